"""Nothing accepted is lost or graded twice. The queue's own rules on a database; then the real service on real
(tiny) notebooks: 30 queued at once, `grade serve` killed (SIGKILL) while two run, then started again, grades
all 30 in order, each once."""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from sqlalchemy import select

from grader.service.auth import enrol
from grader.service.data_folder import DataFolder
from grader.service.db import GRADED, RUNNING, Student, Upload, open_database, sqlite_url, utc
from grader.service.queue import Queue, Result
from grader.service.uploads import StoredNotebook
from tests.service.conftest import (
    POLL_S,
    course_rubric,
    running,
    tiny_notebook,
    tokens,
    wait_until_finished,
    write_roster,
)

STUDENTS = ["ada", "bob", "cy"]
QUEUED = 30
CLAIMED = 60
FINISH_TIMEOUT_S = 900


def queue_of(url: str) -> Queue:
    """The queue of a course on the database at `url`, as a service (re)started on it opens it."""
    db = open_database(url)
    enrol(db, {s: Student(id=s, name="", email="") for s in STUDENTS})
    return Queue(db, capacity=100, per_hour=100, due=None)


def test_the_queue_hands_out_in_order_and_records_a_grade_once(database: str) -> None:
    queue = queue_of(database)
    ids = [queue.accept(STUDENTS[n % 3], StoredNotebook(f"hw{n}.ipynb", f"{n}.ipynb")) for n in range(5)]
    assert [queue.place(i) for i in ids] == [1, 2, 3, 4, 5]
    first, second = queue.claim(), queue.claim()
    assert first is not None and second is not None
    assert (first.id, second.id, first.runs) == (ids[0], ids[1], 1)
    assert queue.place(ids[2]) == 1
    result = Result(GRADED, 10.0, 5.0, 100.0, "")
    queue.finish(first.id, result)
    queue.finish(first.id, Result(GRADED, 99.0, 99.0, 100.0, ""))  # a second finish of the same run: ignored
    # A stop while `second` runs: the service started again puts it back in the queue, ahead of the others.
    queue = queue_of(database)
    assert queue.resume() == 1
    again = queue.claim()
    assert again is not None and (again.id, again.runs) == (second.id, 2)
    with queue.db() as s:
        done = s.get(Upload, first.id)
        assert done is not None and (done.status, done.points, done.points_shown) == (GRADED, 10.0, 5.0)


def test_lateness_is_decided_by_the_due_date_at_acceptance(database: str) -> None:
    queue = queue_of(database)
    queue.due = datetime.now(UTC) - timedelta(minutes=1)
    late = queue.accept("ada", StoredNotebook("hw.ipynb", "a.ipynb"))
    queue.due = datetime.now(UTC) + timedelta(days=1)
    on_time = queue.accept("ada", StoredNotebook("hw.ipynb", "b.ipynb"))
    queue.due, queue.grace_minutes = datetime.now(UTC) - timedelta(minutes=3), 5  # late, but within the grace
    in_grace = queue.accept("ada", StoredNotebook("hw.ipynb", "c.ipynb"))
    with queue.db() as s:
        assert [s.get(Upload, i).late for i in (late, on_time, in_grace)] == [True, False, False]


def test_two_workers_claiming_at_once_never_take_the_same_submission(database: str) -> None:
    """Two workers with their own connections (as two service processes would have) drain one queue at once."""
    accepting = queue_of(database)
    ids = [accepting.accept(STUDENTS[n % 3], StoredNotebook(f"hw{n}.ipynb", f"{n}.ipynb")) for n in range(CLAIMED)]
    workers = [queue_of(database) for _ in range(2)]
    start = threading.Barrier(len(workers))
    taken: list[list[int]] = [[] for _ in workers]

    def drain(queue: Queue, mine: list[int]) -> None:
        start.wait()
        for _ in range(CLAIMED + 1):  # bounded: a worker cannot take more than there are
            upload = queue.claim()
            if upload is None:
                return
            assert upload.status == RUNNING
            mine.append(upload.id)

    threads = [threading.Thread(target=drain, args=pair) for pair in zip(workers, taken, strict=True)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(taken[0] + taken[1]) == ids  # each taken, and by one worker only
    assert all(mine == sorted(mine) for mine in taken)  # each worker in order
    with accepting.db() as s:
        assert set(s.scalars(select(Upload.runs))) == {1}


def wait_for_two_running(staff: httpx.Client, timeout_s: float = 300) -> list[int]:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        listed = staff.get("/api/submissions").json()["submissions"]
        busy = [s["id"] for s in listed if s["status"] == "running"]
        if len(busy) == 2:
            return busy
        time.sleep(POLL_S)
    raise AssertionError(f"two submissions never ran at once in {timeout_s} s")


@pytest.mark.integration
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
    assert all(s["status"] == "graded" for s in finished), [s for s in finished if s["status"] != "graded"]
    with db() as s:
        uploads = list(s.scalars(select(Upload).order_by(Upload.id)))
    assert [u.id for u in uploads] == ids
    assert all(u.status == GRADED and u.points is not None for u in uploads)
    # In order: each started after every one accepted before it (the two killed started again, first).
    assert [u.id for u in sorted(uploads, key=lambda u: utc(u.started_at or u.received_at))] == ids
    # Exactly once: each ran once, but the two killed while running, which ran again from the start.
    assert {u.id: u.runs for u in uploads} == {i: 2 if i in killed else 1 for i in ids}
    assert all(DataFolder(data).report(i, before_due=False).is_file() for i in ids)
    grades_csv = DataFolder(data).class_outputs.grades_csv.read_text(encoding="utf-8")
    assert all(f"\n{student}," in grades_csv for student in STUDENTS)
