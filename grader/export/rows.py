"""Rows of an export, one per student, each built under the stage guard, and CSV text a spreadsheet will not run."""

from __future__ import annotations

import csv
import io
from collections.abc import Callable
from functools import partial
from typing import Any, TypeVar

from grader.isolation import StageFailure, StageGuard
from grader.score import StudentGrade

T = TypeVar("T")


def spreadsheet_cell(text: str) -> str:
    """A spreadsheet cell that a spreadsheet will not run: text starting like a formula gets a quote."""
    return "'" + text if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text


def csv_text(rows: list[list[Any]]) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerows(rows)
    return buffer.getvalue()


def guarded_rows(
    grades: list[StudentGrade],
    stage: str,
    build: Callable[[StudentGrade], T],
    failed: Callable[[StudentGrade, StageFailure], T],
    guard: StageGuard | None,
) -> list[T]:
    """One row per student, each built under the guard: a row that fails to build is replaced, not fatal."""
    guard = guard or StageGuard()
    return [guard.run(stage, g.student, partial(failed, g), build, g) for g in grades]
