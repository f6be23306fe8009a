"""What a student may see of a grade before the due date: the rubric's `visibility: hidden` checks withheld."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime

from grader.rubric.model import Rubric
from grader.score import CheckResult, SectionResult, StudentGrade, round_points


def hides_now(rubric: Rubric, now: datetime) -> bool:
    """Whether hidden checks are withheld at `now`: before `due`, or always when the rubric has no due date."""
    return any(c.hidden for s in rubric.sections for c in s.checks) and (rubric.due is None or now < rubric.due)


def _withheld(check: CheckResult) -> CheckResult:
    return replace(check, points=0.0, passed=False, message="", adjusted=None, hidden=True)


def student_view(grade: StudentGrade, rubric: Rubric) -> StudentGrade:
    """The grade as a student sees it before the due date: each hidden check keeps its title and maximum, not
    its verdict, points or message, and the totals count only the checks shown.

    A section zeroed by integrity evidence stays zero. Lateness is decided by the due date, so a grade
    shown before it carries no late penalty.
    """
    hidden = {(s.id, c.id) for s in rubric.sections for c in s.checks if c.hidden}
    sections = []
    for section in grade.sections:
        checks = tuple(_withheld(c) if (section.id, c.id) in hidden else c for c in section.checks)
        if checks == section.checks:
            sections.append(section)
            continue
        shown = 0.0 if section.integrity else sum(c.points for c in checks if not c.hidden)
        sections.append(
            SectionResult(section.id, section.title, round_points(shown), section.max, checks, section.integrity)
        )
    if sections == list(grade.sections):
        return grade
    bonus = sum(b.points for b in grade.bonus)
    total = round_points(min(grade.max_total, max(0.0, sum(s.points for s in sections) + bonus)))
    return replace(grade, sections=tuple(sections), total=total)
