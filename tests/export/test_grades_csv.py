"""grades.csv: a row per student with the rubric's sections."""

from __future__ import annotations

import csv
from pathlib import Path

from grader.export.grades_csv import write_grades_csv
from tests.export.grades import SECTIONS, grades
from tests.factories import four_section_rubric, make_grade, rubric


def test_grades_csv_has_a_row_per_student(tmp_path: Path) -> None:
    path = tmp_path / "grades.csv"
    write_grades_csv([*grades(), make_grade("=HYPERLINK(1)")], path, rubric())
    rows = list(csv.reader(path.read_text("utf-8").splitlines()))
    assert rows[0] == ["student", "name", *SECTIONS, "bonus", "late", "late_penalty", "total", "status", "message"]
    assert rows[1] == ["ada", "", "10", "10", "50", "20", "10", "0", "", "0", "100", "graded", ""]
    assert rows[2] == ["hal", "", "10", "2", "50", "20", "10", "0", "", "0", "92", "graded", ""]
    assert rows[3][0] == "Zoë Ünal"
    assert rows[4][0] == "'=HYPERLINK(1)"  # a spreadsheet must not run a student's file name


def test_a_grade_lacking_a_section_of_the_rubric_lists_it_unscored(tmp_path: Path) -> None:
    write_grades_csv([make_grade("ada", under=four_section_rubric())], tmp_path / "grades.csv", rubric())
    rows = list(csv.reader((tmp_path / "grades.csv").read_text("utf-8").splitlines()))
    assert rows[0][2:7] == SECTIONS and rows[1][2:7] == ["10", "0", "50", "20", "10"]
