"""Gradescope autograder results: gradescope/<student>/results.json, one test per rubric check."""

from __future__ import annotations

import json
from functools import partial
from typing import Any

from grader.atomic_write import atomic_write
from grader.export.file_stems import file_stems
from grader.export.rows import guarded_rows
from grader.export.summary import check_message, summary_text
from grader.isolation import GRADESCOPE, StageFailure, StageGuard
from grader.late import late_message
from grader.output_layout import OutputLayout
from grader.rubric.model import Rubric
from grader.score import StudentGrade, rubric_sections


def gradescope_results(grade: StudentGrade, rubric: Rubric) -> dict[str, Any]:
    """A Gradescope autograder results.json: the total, a summary, one test per rubric check and per bonus."""
    tests = [
        {
            "name": f"{section.title}: {check.title}",
            "score": float(check.points),
            "max_score": float(check.max),
            "status": "passed" if check.passed else "failed",
            "output": check_message(check),
            "visibility": "visible",
        }
        for section in rubric_sections(grade, rubric)
        for check in section.checks
    ]
    tests += [
        {
            "name": "Adjustment by the instructor",
            "score": float(bonus.points),
            "max_score": 0.0,
            "status": "passed" if bonus.points >= 0 else "failed",
            "output": bonus.comment,
            "visibility": "visible",
        }
        for bonus in grade.bonus
    ]
    if grade.late_penalty:
        # A test of its own, so that the tests still add up to the score Gradescope shows.
        tests.append(
            {
                "name": "Late submission",
                "score": -float(grade.late_penalty),
                "max_score": 0.0,
                "status": "failed",
                "output": late_message(grade, rubric.late),
                "visibility": "visible",
            }
        )
    return {
        "score": float(grade.total),
        "execution_time": round(grade.facts.execution.duration_s),
        "output": summary_text(grade, rubric),
        "tests": tests,
    }


def write_gradescope(
    grades: list[StudentGrade], layout: OutputLayout, rubric: Rubric, guard: StageGuard | None = None
) -> None:
    """Writes gradescope/<student>/results.json for each student (the student id made file-safe).

    A student whose results cannot be made gets a score of 0 with the grader's message as output, so that
    Gradescope shows why rather than nothing.
    """
    stems = file_stems(g.student for g in grades)

    def failed(grade: StudentGrade, failure: StageFailure) -> dict[str, Any]:
        return {"score": 0.0, "output": failure.message, "tests": []}

    results_of = partial(gradescope_results, rubric=rubric)
    for grade, results in zip(grades, guarded_rows(grades, GRADESCOPE, results_of, failed, guard), strict=True):
        text = json.dumps(results, indent=1, ensure_ascii=False) + "\n"
        atomic_write(layout.gradescope_results(stems[grade.student]), text)
