"""Instructor adjustments: the CSV is checked line by line before anything runs, and applying it changes the
points it names, keeps what the grader gave beside them, and never takes a total outside 0..max."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest

from grader.adjustments import Adjustment, AdjustmentError, apply_adjustments, read_adjustments
from grader.export.canvas import write_canvas_csv
from grader.export.grades_csv import write_grades_csv
from grader.export.grades_json import write_grades_json
from grader.export.gradescope import gradescope_results
from grader.report.render import write_reports
from grader.score import StudentGrade
from tests.factories import make_grade, report_context, rubric

STUDENTS = ("ada", "hal", "Zoë Ünal")
HEADER = "student,check,points,comment\n"


def read(tmp_path: Path, text: str) -> dict[str, list[Adjustment]]:
    path = tmp_path / "adjustments.csv"
    path.write_text(text, encoding="utf-8")
    return read_adjustments(path, STUDENTS, rubric())


def hal() -> StudentGrade:
    """hal lost the visualize section's grid, pixels and titles checks (8 of 10 points)."""
    return make_grade("hal", kernel={"figures": []})


def test_check_and_bonus_lines_are_read_in_any_column_order(tmp_path: Path) -> None:
    text = (
        "\ufeffcomment,points,check,student\n"  # as a spreadsheet saves it
        '"Figure shown in the PDF, grid checked by hand",2,visualize.grid,hal\n'
        "\n"
        "Late-day waiver,-1.5,bonus,hal\n"
        "Extra credit,2,bonus,Zoë Ünal\n"
    )
    found = read(tmp_path, text)
    assert found == {
        "hal": [
            Adjustment("hal", "visualize", "grid", 2.0, "Figure shown in the PDF, grid checked by hand", 2),
            Adjustment("hal", "", "", -1.5, "Late-day waiver", 4),
        ],
        "Zoë Ünal": [Adjustment("Zoë Ünal", "", "", 2.0, "Extra credit", 5)],
    }


@pytest.mark.parametrize(
    ("text", "words"),
    [
        (HEADER + "ada,build.hidden,10,ok\nbob,build.hidden,5,typo\n", ["line 3", "unknown student 'bob'"]),
        (HEADER + "hall,bonus,1,x\n", ["line 2", "'hall'", "did you mean 'hal'"]),
        (HEADER + "ada,build.hiden,5,x\n", ["line 2", "unknown check 'build.hiden'", "did you mean 'build.hidden'"]),
        (HEADER + "ada,hidden,5,x\n", ["line 2", "unknown check 'hidden'", "section.check"]),
        (HEADER + "ada,build.hidden,11,x\n", ["line 2", "build.hidden", "0..10", "11"]),
        (HEADER + "ada,build.hidden,-1,x\n", ["line 2", "0..10", "-1"]),
        (HEADER + "ada,build.hidden,ten,x\n", ["line 2", "'ten' is not a number"]),
        (HEADER + "ada,bonus,nan,x\n", ["line 2", "'nan' is not a finite number"]),
        (HEADER + "ada,build.hidden,5,\n", ["line 2", "comment is empty"]),
        (HEADER + "ada,build.hidden,5,a\nhal,bonus,1,b\nada,build.hidden,6,c\n", ["line 4", "already", "line 2"]),
        (HEADER + "ada,build.hidden,5\n", ["line 2", "3 fields", "4"]),
        ("student,check,point,comment\nada,build.hidden,5,x\n", ["line 1", "missing column(s) points"]),
        ("", ["empty file", "student,check,points,comment"]),
    ],
)
def test_a_wrong_line_is_an_error_naming_the_file_and_line(tmp_path: Path, text: str, words: list[str]) -> None:
    with pytest.raises(AdjustmentError) as error:
        read(tmp_path, text)
    message = str(error.value)
    assert str(tmp_path / "adjustments.csv") in message and "\n" not in message
    for word in words:
        assert word in message, message


def test_a_missing_or_binary_file_is_a_user_error(tmp_path: Path) -> None:
    with pytest.raises(AdjustmentError, match="cannot read adjustments file"):
        read_adjustments(tmp_path / "nope.csv", STUDENTS, rubric())
    (tmp_path / "bin.csv").write_bytes(b"\xff\xfe\x00student")
    with pytest.raises(AdjustmentError, match="not UTF-8"):
        read_adjustments(tmp_path / "bin.csv", STUDENTS, rubric())


def adjusted_hal(tmp_path: Path, lines: str) -> StudentGrade:
    return apply_adjustments(hal(), read(tmp_path, HEADER + lines)["hal"])


def test_an_adjusted_check_keeps_the_graders_points_beside_the_new_ones(tmp_path: Path) -> None:
    before = hal()
    assert before.total == 92 and not before.adjusted
    after = adjusted_hal(tmp_path, "hal,visualize.grid,2,Grid checked by hand\n")
    section = next(s for s in after.sections if s.id == "visualize")
    grid = next(c for c in section.checks if c.id == "grid")
    assert grid.points == 2 and grid.passed and grid.adjusted is not None
    assert grid.adjusted.from_points == 0 and grid.adjusted.comment == "Grid checked by hand"
    assert section.points == 4 and after.total == 94 and after.adjusted
    untouched = [c for s in after.sections for c in s.checks if c.id != "grid" or s.id != "visualize"]
    assert not any(c.adjusted for c in untouched)
    # Lowering a passed check: the student no longer passes it.
    lowered = adjusted_hal(tmp_path, "hal,build.hidden,6,Used relu in an earlier cell\n")
    hidden = next(c for s in lowered.sections for c in s.checks if c.id == "hidden")
    assert hidden.points == 6 and not hidden.passed and lowered.total == 88


def test_bonus_points_add_up_and_the_total_stays_within_0_and_max(tmp_path: Path) -> None:
    assert adjusted_hal(tmp_path, "hal,bonus,3,Extra credit\nhal,bonus,-1,Late\n").total == 94
    assert adjusted_hal(tmp_path, "hal,bonus,20,Extra credit\n").total == 100
    assert adjusted_hal(tmp_path, "hal,bonus,-500,Academic misconduct\n").total == 0
    capped = adjusted_hal(tmp_path, "hal,bonus,20,Extra credit\n")
    assert [(b.points, b.comment) for b in capped.bonus] == [(20.0, "Extra credit")]


def test_no_adjustments_change_nothing() -> None:
    assert apply_adjustments(hal(), []) == hal()


def test_exports_carry_the_adjustments(tmp_path: Path) -> None:
    grade = adjusted_hal(tmp_path, "hal,visualize.grid,2,Grid checked by hand\nhal,bonus,1.5,Extra credit\n")
    grades = [make_grade("ada"), grade]
    write_grades_json(grades, tmp_path / "grades.json", rubric())
    ada_data, hal_data = json.loads((tmp_path / "grades.json").read_text("utf-8"))["students"]
    assert ada_data["bonus"] == [] and not any("adjusted" in c for c in ada_data["sections"]["visualize"]["checks"])
    grid = next(c for c in hal_data["sections"]["visualize"]["checks"] if c["id"] == "grid")
    assert grid["points"] == 2.0 and grid["adjusted"] == {"from": 0.0, "comment": "Grid checked by hand"}
    assert hal_data["bonus"] == [{"points": 1.5, "comment": "Extra credit"}] and hal_data["total"] == 95.5

    write_grades_csv(grades, tmp_path / "grades.csv", rubric())
    rows = list(csv.reader((tmp_path / "grades.csv").read_text("utf-8").splitlines()))
    assert rows[0][-6:] == ["bonus", "late", "late_penalty", "total", "status", "message"]
    assert rows[2] == ["hal", "", "10", "4", "50", "20", "10", "1.5", "", "0", "95.5", "graded", ""]
    write_canvas_csv(grades, tmp_path / "canvas.csv", rubric(), None)
    assert (tmp_path / "canvas.csv").read_text("utf-8").splitlines()[-1].endswith(",95.5")

    results = gradescope_results(grade, rubric())
    assert results["score"] == 95.5
    grid_test = next(t for t in results["tests"] if t["name"].endswith("3x3 grid is shown"))
    assert grid_test["score"] == 2 and "from 0 to 2 points: Grid checked by hand" in grid_test["output"]
    assert results["tests"][-1] == {
        "name": "Adjustment by the instructor",
        "score": 1.5,
        "max_score": 0.0,
        "status": "passed",
        "output": "Extra credit",
        "visibility": "visible",
    }
    assert sum(t["score"] for t in results["tests"]) == pytest.approx(results["score"])


def test_reports_show_the_adjustment_and_the_class_counts_it(tmp_path: Path) -> None:
    comment = "Checked by hand <script>alert(1)</script>"
    grade = adjusted_hal(tmp_path, f'hal,visualize.grid,2,"{comment}"\nhal,bonus,30,"Extra credit"\n')
    out = tmp_path / "reports"
    write_reports([make_grade("ada"), grade], out, report_context(), rubric())
    page = (out / "students" / "hal.html").read_text("utf-8")
    assert "Adjusted by your instructor</strong> from 0 to 2 points: Checked by hand &lt;script&gt;" in page
    assert "<script>alert" not in page
    assert "+30 points: Extra credit" in page and "the total stays within 0 and 100" in page
    ada_page = (out / "students" / "ada.html").read_text("utf-8")
    assert "Adjusted by your instructor" not in ada_page
    index = (out / "index.html").read_text("utf-8")
    assert '<div class="label">Adjusted by hand</div><div class="value">1</div>' in index
    assert 'title="changed by hand">✎</a>' in index
