"""Nothing accepted is lost or graded twice: 30 queued at once, `grade serve` killed (SIGKILL) while two run,
then started again, grades all 30 in order, each once. Runs the real service on real (tiny) notebooks."""

from __future__ import annotations

import time
from pathlib import Path

import httpx
import pytest
from sqlalchemy import select

from grader.service.db import GRADED, RUNNING, Upload, open_database, sqlite_url, utc
from grader.service.worker import report_path
from tests.service.conftest import (
    POLL_S,
    course_rubric,
    running,
    tiny_notebook,
    tokens,
    wait_until_finished,
    write_roster,
)

pytestmark = pytest.mark.integration
STUDENTS = ["ada", "bob", "cy"]
QUEUED = 30
FINISH_TIMEOUT_S = 900


def wait_for_two_running(staff: httpx.Client, timeout_s: float = 300) -> list[int]:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        listed = staff.get("/api/submissions").json()["submissions"]
        busy = [s["id"] for s in listed if s["status"] == "running"]
        if len(busy) == 2:
            return busy
        time.sleep(POLL_S)
    raise AssertionError(f"two submissions never ran at once in {timeout_s} s")


def test_thirty_queued_are_graded_in_order_exactly_once_across_a_sigkill(
    tmp_path: Path, small_dataset: Path, cache_dir: Path
) -> None:
    rubric = course_rubric(tmp_path, per_hour=QUEUED)
    roster = write_roster(tmp_path, STUDENTS)
    data = tmp_path / "data"
    links = tokens(data, roster)
    staff_token = tokens(data, None, "--staff")["staff"]
    args = (data, rubric, roster, small_dataset, cache_dir, "--jobs", "2")
    with running(*args) as server:
        ids = []
        for n in range(QUEUED):
            with server.client(links[STUDENTS[n % len(STUDENTS)]]) as client:
                answer = client.post("/api/submissions", files={"notebook": (f"hw{n}.ipynb", tiny_notebook(n))})
            assert answer.status_code == 202, answer.text
            ids.append(answer.json()["id"])
        with server.client(staff_token) as staff:
            killed = wait_for_two_running(staff)
        server.kill()  # SIGKILL to the service and everything it started
    db = open_database(sqlite_url(data))
    with db() as s:
        assert sorted(s.scalars(select(Upload.id).where(Upload.status == RUNNING))) == sorted(killed)
    with running(*args) as server, server.client(staff_token) as staff:
        finished = wait_until_finished(staff, ids, FINISH_TIMEOUT_S)
    assert sorted(s["id"] for s in finished) == ids  # no loss, no duplicate
    assert all(s["status"] == "graded" for s in finished)
    with db() as s:
        uploads = list(s.scalars(select(Upload).order_by(Upload.id)))
    assert [u.id for u in uploads] == ids
    assert all(u.status == GRADED and u.points is not None for u in uploads)
    # In order: each started after every one accepted before it (the two killed started again, first).
    assert [u.id for u in sorted(uploads, key=lambda u: utc(u.started_at or u.received_at))] == ids
    # Exactly once: each ran once, but the two killed while running, which ran again from the start.
    assert {u.id: u.runs for u in uploads} == {i: 2 if i in killed else 1 for i in ids}
    assert all(report_path(data / "reports", i, before_due=False).is_file() for i in ids)
    grades_csv = (data / "class" / "grades.csv").read_text(encoding="utf-8")
    assert all(f"\n{student}," in grades_csv for student in STUDENTS)
