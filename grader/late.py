"""Applies the rubric's late policy to a grade: a pure function of the grade, the policy and the late flag."""

from __future__ import annotations

from dataclasses import replace

from grader.rubric.model import LatePolicy
from grader.score import StudentGrade, round_points


def late_penalty(total: float, policy: LatePolicy) -> float:
    """The points a late submission with `total` points loses; never more than it has."""
    penalty = policy.points if policy.points else total * policy.percent / 100
    return round_points(min(max(total, 0.0), penalty))


def apply_late_policy(grade: StudentGrade, policy: LatePolicy, late: bool) -> StudentGrade:
    """The grade after the late penalty (recorded in `late_penalty`); unchanged when on time."""
    if not late:
        return grade
    penalty = late_penalty(grade.total, policy)
    return replace(grade, total=round_points(grade.total - penalty), late_penalty=penalty)
