"""A real notebook through `grade serve` and through `grade`: the same grade and the same report."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from tests.conftest import ROOT, run_grade
from tests.service.conftest import course_rubric, running, tokens, wait_until_finished, write_roster

pytestmark = pytest.mark.integration
NOTEBOOK = ROOT / "submissions" / "cara_unscaled_pixels.ipynb"  # a partial grade: several checks fail
GRADING_TIMEOUT_S = 900


def without_timestamps(html: str) -> str:
    return re.sub(r"Generated [0-9T:+-]+", "", html)


def test_the_service_grades_a_notebook_as_grade_does(tmp_path: Path, small_dataset: Path, cache_dir: Path) -> None:
    rubric = course_rubric(tmp_path)
    roster = write_roster(tmp_path, ["cara"])
    data = tmp_path / "data"
    token = tokens(data, roster)["cara"]
    with running(data, rubric, roster, small_dataset, cache_dir) as server, server.client(token) as client:
        answer = client.post("/api/submissions", files={"notebook": (NOTEBOOK.name, NOTEBOOK.read_bytes())})
        assert answer.status_code == 202
        upload_id = answer.json()["id"]
        (served,) = wait_until_finished(client, [upload_id], GRADING_TIMEOUT_S)
        report = client.get(f"/submissions/{upload_id}/report")
    assert report.status_code == 200

    folder = tmp_path / "cli"
    folder.mkdir()
    (folder / "cara.ipynb").write_bytes(NOTEBOOK.read_bytes())
    out = tmp_path / "out"
    done = run_grade(folder, "--out", out, "--rubric", rubric, "--dataset", small_dataset, cache=cache_dir)
    assert done.returncode == 0, done.stderr
    (graded,) = json.loads((out / "grades.json").read_text())["students"]
    assert served["status"] == "graded"
    assert 0 < served["points"] < served["max_points"]
    assert (served["points"], served["max_points"]) == (graded["total"], graded["max_total"])
    cli_report = (out / "students" / "cara.html").read_text(encoding="utf-8")
    assert without_timestamps(report.text) == without_timestamps(cli_report)
