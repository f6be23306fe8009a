"""The late policy: read from the rubric (with line-numbered errors), applied purely, shown in every export."""

from __future__ import annotations

import csv
import dataclasses
from pathlib import Path

import pytest

from grader.discover import Origin
from grader.export import grade_entry, gradescope_results, write_canvas_csv, write_grades_csv
from grader.late import apply_late_policy, late_penalty
from grader.rubric.load import load_rubric
from grader.rubric.model import LatePolicy, RubricError
from grader.score import StudentGrade
from tests.factories import ROOT, make_grade, rubric

JANE = Origin(name="smithjane", lms="canvas", lms_id="48213", late=True, superseded=("smithjane_48213_1_mnist.ipynb",))


def rubric_with(tmp_path: Path, late_block: str) -> Path:
    path = tmp_path / "rubric.yaml"
    path.write_text((ROOT / "rubric.yaml").read_text(encoding="utf-8") + "\n" + late_block, encoding="utf-8")
    return path


@pytest.mark.parametrize(
    ("block", "policy"),
    [
        ("late:\n  penalty_points: 10\n", LatePolicy(points=10)),
        ("late: {penalty_percent: 20}\n", LatePolicy(percent=20)),
        ("late: {}\n", LatePolicy()),
        ("", LatePolicy()),
    ],
)
def test_the_rubric_states_the_late_policy(tmp_path: Path, block: str, policy: LatePolicy) -> None:
    assert load_rubric(rubric_with(tmp_path, block)).late == policy


@pytest.mark.parametrize(
    ("block", "words"),
    [
        ("late:\n  penalty_points: 10\n  penalty_percent: 5\n", "not both"),
        ("late:\n  penalty_percent: 120\n", "late.penalty_percent (line {n}): must be at most 100"),
        ("late:\n  penalty_points: -3\n", "late.penalty_points (line {n}): must be at least 0"),
        ("late:\n  penalty_points: 101\n", "late.penalty_points (line {n}): must be at most 100"),
        ("late:\n  penalty_points: ten\n", "late.penalty_points (line {n}): expected a number"),
        ("late:\n  penalty_days: 1\n", "late.penalty_days (line {n}): unknown key"),
        ("late: 10\n", "late (line {n}): expected a mapping"),
    ],
)
def test_a_wrong_late_policy_names_the_key_and_line(tmp_path: Path, block: str, words: str) -> None:
    path = rubric_with(tmp_path, block)
    line = len(path.read_text(encoding="utf-8").splitlines())  # the policy's last key is the file's last line
    with pytest.raises(RubricError, match=words.format(n=line).replace("(", r"\(").replace(")", r"\)")):
        load_rubric(path)


def scored(total_off: float = 0.0, origin: Origin = JANE) -> StudentGrade:
    """A perfect grade minus `total_off` points (taken from the total only), from `origin`."""
    grade = make_grade("48213")
    return dataclasses.replace(grade, total=grade.total - total_off, origin=origin)


@pytest.mark.parametrize(
    ("policy", "earned", "penalty"),
    [
        (LatePolicy(points=10), 100, 10),
        (LatePolicy(percent=20), 85, 17),
        (LatePolicy(points=10), 4, 4),  # never below zero
        (LatePolicy(percent=100), 63.5, 63.5),
        (LatePolicy(percent=12.5), 0, 0),
        (LatePolicy(), 90, 0),  # late, but the rubric charges nothing
    ],
)
def test_late_penalty(policy: LatePolicy, earned: float, penalty: float) -> None:
    assert late_penalty(earned, policy) == pytest.approx(penalty)
    grade = apply_late_policy(scored(100 - earned), policy, late=True)
    assert grade.late_penalty == pytest.approx(penalty)
    assert grade.total == pytest.approx(earned - penalty) and grade.total >= 0
    assert grade.sections == scored().sections  # the checks keep what they earned


def test_on_time_work_is_unchanged() -> None:
    grade = scored(origin=dataclasses.replace(JANE, late=False))
    assert apply_late_policy(grade, LatePolicy(points=10), late=False) == grade


def test_every_export_shows_the_penalty(tmp_path: Path) -> None:
    late = apply_late_policy(scored(), LatePolicy(points=10), late=True)
    on_time = dataclasses.replace(make_grade("ada"))
    grades = [late, on_time]

    jane, ada = grade_entry(late, rubric()), grade_entry(on_time, rubric())
    assert (jane["student"], jane["name"], jane["lms"], jane["late"]) == ("48213", "smithjane", "canvas", True)
    assert (jane["late_penalty"], jane["total"]) == (10.0, 90.0)
    assert jane["ignored"] == ["smithjane_48213_1_mnist.ipynb"]
    assert (ada["late"], ada["late_penalty"]) == (False, 0.0)

    write_grades_csv(grades, tmp_path / "grades.csv", rubric())
    rows = list(csv.reader((tmp_path / "grades.csv").read_text("utf-8").splitlines()))
    assert rows[0][-5:] == ["late", "late_penalty", "total", "status", "message"]
    assert rows[1] == ["48213", "smithjane", "10", "10", "50", "20", "10", "0", "yes", "10", "90", "graded", ""]
    assert rows[2] == ["ada", "", "10", "10", "50", "20", "10", "0", "", "0", "100", "graded", ""]

    # Canvas matches rows on the ID column: a Canvas download fills it from the user id, with no roster.
    write_canvas_csv(grades, tmp_path / "canvas.csv", rubric(), None)
    rows = list(csv.reader((tmp_path / "canvas.csv").read_text("utf-8").splitlines()))
    assert rows[2] == ["smithjane", "48213", "", "", "", "90"]
    assert rows[3] == ["ada", "", "", "", "", "100"]

    results = gradescope_results(late, rubric())
    assert results["score"] == 90
    assert sum(t["score"] for t in results["tests"]) == pytest.approx(90)
    assert results["tests"][-1]["name"] == "Late submission" and results["tests"][-1]["score"] == -10
    assert "Late submission: -10" in results["output"]
