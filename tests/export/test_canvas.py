"""The Canvas gradebook import."""

from __future__ import annotations

import csv
import dataclasses
from pathlib import Path

from grader.export.canvas import write_canvas_csv
from grader.export.roster import read_roster
from tests.export.grades import ROSTER, grades
from tests.factories import rubric


def test_canvas_csv_has_the_gradebook_header_points_possible_and_roster_ids(tmp_path: Path) -> None:
    roster_path = tmp_path / "roster.csv"
    roster_path.write_text(ROSTER, encoding="utf-8")
    path = tmp_path / "canvas.csv"
    write_canvas_csv(grades(), path, rubric(), read_roster(roster_path))
    rows = list(csv.reader(path.read_text("utf-8").splitlines()))
    assert rows[0] == [
        "Student",
        "ID",
        "SIS User ID",
        "SIS Login ID",
        "Section",
        "Image Classification using MNIST (points)",
    ]
    assert rows[1] == ["Points Possible", "", "", "", "", "100"]
    assert rows[2] == ["Lovelace, Ada", "1001", "S1001", "ada@uni.edu", "CSC 383", "100"]
    assert rows[3] == ["Hal Jordan", "1002", "S1002", "hal@uni.edu", "CSC 483", "92"]
    assert rows[4] == ["Zoë Ünal", "", "", "", "", "100"]  # not on the roster
    write_canvas_csv(grades()[:1], path, dataclasses.replace(rubric(), title="HW 1"), None)
    assert path.read_text("utf-8").splitlines()[0].endswith(",HW 1 (points)")
