"""A real notebook through `grade serve` and through `grade`: the same grade and the same report; and after
a rubric edit, the staff's "re-score everyone" gives what `grade --rescore` gives."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import ROOT, run_grade
from tests.service.conftest import course_rubric, running, tokens, wait_until_finished, write_roster

pytestmark = pytest.mark.integration
NOTEBOOK = ROOT / "submissions" / "cara_unscaled_pixels.ipynb"  # a partial grade: its pixels are not scaled
GRADING_TIMEOUT_S = 900
# Moves two points in the prepare section from the labels check (which cara passes) to the scaling check
# (which she fails): the section's total stays 10, hers drops by 2.
MOVED = (
    ("x_scaled: {kind: data.images_scaled, points: 3,", "x_scaled: {kind: data.images_scaled, points: 5,"),
    ("y_onehot: {kind: data.labels_onehot, points: 3,", "y_onehot: {kind: data.labels_onehot, points: 1,"),
)


def without_timestamps(html: str) -> str:
    return re.sub(r"Generated [0-9T:+-]+", "", html)


def grade_cli(
    tmp_path: Path, name: str, rubric: Path, dataset: Path, cache: Path, *extra: str
) -> tuple[dict[str, Any], Path]:
    """`grade` on the same notebook: its one student's grades.json entry, and the output folder."""
    folder = tmp_path / "cli"
    folder.mkdir(exist_ok=True)
    (folder / "cara.ipynb").write_bytes(NOTEBOOK.read_bytes())
    out = tmp_path / name
    done = run_grade(folder, "--out", out, "--rubric", rubric, "--dataset", dataset, *extra, cache=cache)
    assert done.returncode == 0, done.stderr
    (graded,) = json.loads((out / "grades.json").read_text())["students"]
    return graded, out


def staff_session(url: str, token: str) -> httpx.Client:
    """A signed-in staff browser session (cookie), with the CSRF token of the staff page."""
    client = httpx.Client(base_url=url, timeout=120, follow_redirects=True)
    csrf = re.search(r'name="csrf" value="([^"]+)"', client.get("/login").text)
    assert csrf is not None
    assert client.post("/login", data={"csrf": csrf.group(1), "token": token}).status_code == 200  # -> /staff
    return client


def test_the_service_grades_a_notebook_as_grade_does(tmp_path: Path, small_dataset: Path, cache_dir: Path) -> None:
    rubric = course_rubric(tmp_path)
    roster = write_roster(tmp_path, ["cara"])
    data = tmp_path / "data"
    token = tokens(data, roster)["cara"]
    staff_token = tokens(data, None, "--staff")["staff"]
    with running(data, rubric, roster, small_dataset, cache_dir) as server, server.client(token) as client:
        answer = client.post("/api/submissions", files={"notebook": (NOTEBOOK.name, NOTEBOOK.read_bytes())})
        assert answer.status_code == 202
        upload_id = answer.json()["id"]
        (served,) = wait_until_finished(client, [upload_id], GRADING_TIMEOUT_S)
        report = client.get(f"/submissions/{upload_id}/report")
        assert report.status_code == 200

        graded, out = grade_cli(tmp_path, "out", rubric, small_dataset, cache_dir)
        assert served["status"] == "graded"
        assert 0 < served["points"] < served["max_points"]
        assert (served["points"], served["max_points"]) == (graded["total"], graded["max_total"])
        cli_report = (out / "students" / "cara.html").read_text(encoding="utf-8")
        # The same page, but that the service knows when the notebook came in (a plain folder does not).
        submitted = re.search(r'<div class="notice" id="late">\s*Submitted [^<]*, on time\.\s*</div>\n?', report.text)
        assert submitted is not None and 'id="late"' not in cli_report
        served_page = report.text.replace(submitted.group(0), "")
        assert without_timestamps(served_page) == without_timestamps(cli_report)

        text = rubric.read_text(encoding="utf-8")
        for before, after in MOVED:
            assert before in text
            text = text.replace(before, after)
        rubric.write_text(text, encoding="utf-8")
        staff = staff_session(server.url, staff_token)
        try:
            csrf = re.search(r'name="csrf" value="([^"]+)"', staff.get("/staff").text)
            assert csrf is not None
            rescored = staff.post("/staff/rescore", data={"csrf": csrf.group(1)})
            assert rescored.status_code == 200 and "Re-scored 1 submission(s)" in rescored.text
        finally:
            staff.close()
        after = client.get(f"/api/submissions/{upload_id}").json()
    regraded, _ = grade_cli(tmp_path, "out-rescored", rubric, small_dataset, cache_dir, "--rescore")
    assert after["points"] == regraded["total"] == served["points"] - 2
