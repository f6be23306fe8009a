"""Instructor adjustments: reads `--adjustments FILE` and applies it to scored grades, keeping what the grader gave.

The file is a CSV with the header `student,check,points,comment`. `check` is `section.check` (that check's
points become `points`, within 0..the check's maximum) or `bonus` (`points` are added to the total; negative
takes points away). A student's total stays within 0..the rubric's maximum: a bonus can give back what the
checks did not, but never lifts a total above full marks nor below zero. Every line needs a comment, which the
student's report shows. Applying adjustments is a pure function of a grade, so they apply the same to a
fresh run and to `--rescore` from cached facts.
"""

from __future__ import annotations

import difflib
import math
from collections.abc import Collection, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

from grader.csvfile import read_rows
from grader.errors import GraderError
from grader.rubric.model import Rubric
from grader.score import Adjusted, Bonus, StudentGrade, round_points

COLUMNS = ("student", "check", "points", "comment")
BONUS = "bonus"


class AdjustmentError(GraderError):
    """The adjustments file is invalid; the message names the file and the line."""


@dataclass(frozen=True, slots=True)
class Adjustment:
    """One line of the adjustments file: a check's new points (`section`, `check` set) or a bonus (both empty)."""

    student: str
    section: str
    check: str
    points: float
    comment: str
    line: int


def _suggestion(word: str, choices: Collection[str]) -> str:
    close = difflib.get_close_matches(word, list(choices), n=1)
    return f"; did you mean {close[0]!r}?" if close else ""


def read_adjustments(path: Path, students: Collection[str], rubric: Rubric) -> dict[str, list[Adjustment]]:
    """The adjustments in `path` by student, checked against the class and the rubric before anything runs."""
    maxima = {(s.id, c.id): c.points for s in rubric.sections for c in s.checks}
    known = set(students)
    found: dict[str, list[Adjustment]] = {}
    first_line: dict[tuple[str, str, str], int] = {}
    for line, values in read_rows(path, COLUMNS, AdjustmentError, "adjustments file"):
        at = f"{path}: line {line}"
        student, check, comment = values["student"], values["check"], values["comment"]
        if student not in known:
            raise AdjustmentError(f"{at}: unknown student {student!r}{_suggestion(student, known)}")
        if check == BONUS:
            section_id = check_id = ""
        else:
            section_id, _, check_id = check.partition(".")
            if (section_id, check_id) not in maxima:
                hint = _suggestion(check, [f"{s}.{c}" for s, c in maxima] + [BONUS])
                raise AdjustmentError(
                    f"{at}: unknown check {check!r} (use section.check from the rubric, or {BONUS}){hint}"
                )
        try:
            points = float(values["points"])
        except ValueError:
            raise AdjustmentError(f"{at}: points {values['points']!r} is not a number") from None
        if not math.isfinite(points):
            raise AdjustmentError(f"{at}: points {values['points']!r} is not a finite number")
        if check_id:
            top = maxima[section_id, check_id]
            if not 0 <= points <= top:
                raise AdjustmentError(f"{at}: points for {check} must be within 0..{top:g}, found {points:g}")
            key = (student, section_id, check_id)
            if key in first_line:
                raise AdjustmentError(f"{at}: {student}'s {check} is already adjusted on line {first_line[key]}")
            first_line[key] = line
        if not comment:
            raise AdjustmentError(f"{at}: the comment is empty; say why (the student's report shows it)")
        found.setdefault(student, []).append(Adjustment(student, section_id, check_id, points, comment, line))
    return found


def apply_adjustments(grade: StudentGrade, adjustments: Sequence[Adjustment]) -> StudentGrade:
    """A scored `grade` with its adjustments applied: checks set by hand, bonuses added, the total kept in 0..max."""
    if not adjustments:
        return grade
    by_check = {(a.section, a.check): a for a in adjustments if a.check}
    sections = []
    for section in grade.sections:
        checks = []
        for check in section.checks:
            change = by_check.get((section.id, check.id))
            if change is not None:
                # "passed" means full credit, for an adjusted check as for any other.
                check = replace(
                    check,
                    points=change.points,
                    passed=change.points >= check.max,
                    adjusted=Adjusted(check.points, change.comment),
                )
            checks.append(check)
        sections.append(replace(section, checks=tuple(checks), points=round_points(sum(c.points for c in checks))))
    bonus = grade.bonus + tuple(Bonus(a.points, a.comment) for a in adjustments if not a.check)
    earned = sum(s.points for s in sections) + sum(b.points for b in bonus)
    total = round_points(min(grade.max_total, max(0.0, earned)))
    return replace(grade, sections=tuple(sections), bonus=bonus, total=total)
