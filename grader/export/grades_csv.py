"""grades.csv: one row per student with the points of each rubric section, bonus, lateness and total."""

from __future__ import annotations

from functools import partial
from pathlib import Path
from typing import Any

from grader.atomic_write import atomic_write
from grader.export.rows import csv_text, guarded_rows, spreadsheet_cell
from grader.isolation import GRADES_CSV, StageFailure, StageGuard
from grader.rubric.model import GRADEBOOK_COLUMNS, Rubric
from grader.score import StudentGrade, number, rubric_sections


def _grades_csv_row(grade: StudentGrade, rubric: Rubric) -> list[Any]:
    points = [number(s.points) for s in rubric_sections(grade, rubric)]
    message = spreadsheet_cell(grade.message) if grade.status == "error" else ""
    bonus = number(sum(b.points for b in grade.bonus))
    late = "yes" if grade.lateness.late else ""
    identity = [spreadsheet_cell(grade.student), spreadsheet_cell(grade.origin.name)]
    penalty = number(grade.late_penalty)
    return [*identity, *points, bonus, late, penalty, number(grade.total), grade.status, message]


def _failed_csv_row(grade: StudentGrade, failure: StageFailure, rubric: Rubric) -> list[Any]:
    return [spreadsheet_cell(grade.student), "", *(0 for _ in rubric.sections), 0, "", 0, 0, "error", failure.message]


def write_grades_csv(grades: list[StudentGrade], path: Path, rubric: Rubric, guard: StageGuard | None = None) -> None:
    """Writes one row per student: id, LMS name, points per rubric section, bonus points given by hand, late
    and its penalty, total, status, and the message of a status "error"."""
    sections = [section.id for section in rubric.sections]
    before, after = GRADEBOOK_COLUMNS
    header: list[Any] = [*before, *sections, *after]
    build, failed = partial(_grades_csv_row, rubric=rubric), partial(_failed_csv_row, rubric=rubric)
    rows = guarded_rows(grades, GRADES_CSV, build, failed, guard)
    atomic_write(path, csv_text([header, *rows]))
