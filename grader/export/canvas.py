"""A Canvas gradebook import: the roster's identity columns, a Points Possible row, then each total."""

from __future__ import annotations

from functools import partial
from pathlib import Path
from typing import Any

from grader.atomic_write import atomic_write
from grader.export.roster import RosterEntry
from grader.export.rows import csv_text, guarded_rows, spreadsheet_cell
from grader.isolation import CANVAS_CSV, StageFailure, StageGuard
from grader.rubric.model import Rubric
from grader.score import StudentGrade, number

CANVAS_COLUMNS = ("Student", "ID", "SIS User ID", "SIS Login ID", "Section")


def write_canvas_csv(
    grades: list[StudentGrade],
    path: Path,
    rubric: Rubric,
    roster: dict[str, RosterEntry] | None,
    guard: StageGuard | None = None,
) -> None:
    """Writes a Canvas gradebook import: the roster's identity columns, a Points Possible row, then totals.

    A submission from a Canvas download carries its Canvas user id, which fills the `ID` column that
    Canvas matches on, so no roster is needed (a roster entry still wins). Anyone else missing from the
    roster keeps their notebook name as the Student column, other ids blank. A student whose row could not
    be made gets only their notebook name and an empty score.
    """
    possible = number(rubric.max_total)
    rows: list[list[Any]] = guarded_rows(
        grades, CANVAS_CSV, partial(_canvas_row, roster=roster), _failed_canvas_row, guard
    )
    header: list[list[Any]] = [
        [*CANVAS_COLUMNS, f"{rubric.title} (points)"],
        ["Points Possible", "", "", "", "", possible],
    ]
    atomic_write(path, csv_text([*header, *rows]))


def _canvas_identity(grade: StudentGrade, roster: dict[str, RosterEntry] | None) -> list[str]:
    entry = (roster or {}).get(grade.student)
    if entry is None and grade.origin.lms == "canvas":
        return [spreadsheet_cell(grade.display_name), spreadsheet_cell(grade.origin.lms_id), "", "", ""]
    if entry is None:
        return [spreadsheet_cell(grade.student), "", "", "", ""]
    return [spreadsheet_cell(v) for v in (entry.name, entry.id, entry.sis_user_id, entry.sis_login_id, entry.section)]


def _canvas_row(grade: StudentGrade, roster: dict[str, RosterEntry] | None) -> list[Any]:
    return [*_canvas_identity(grade, roster), number(grade.total)]


def _failed_canvas_row(grade: StudentGrade, _: StageFailure) -> list[Any]:
    # Only what cannot fail: the notebook's name, and an empty score that Canvas leaves ungraded.
    return [spreadsheet_cell(grade.student), "", "", "", "", ""]
