"""Applies the rubric's late policy to a grade: a pure function of the grade, the policy and how late it was."""

from __future__ import annotations

from dataclasses import replace

from grader.lateness import Lateness
from grader.rubric.model import LatePolicy
from grader.score import StudentGrade, number, round_points


def over_max_days(lateness: Lateness, policy: LatePolicy) -> bool:
    """Whether the submission came in more days late than the per-day policy accepts (it then earns 0)."""
    return lateness.late and policy.max_days is not None and lateness.days > policy.max_days


def late_penalty(total: float, policy: LatePolicy, lateness: Lateness) -> float:
    """The points a submission with `total` points loses for being late; never more than it has."""
    if not lateness.late:
        return 0.0
    if over_max_days(lateness, policy):
        penalty = total
    elif policy.percent_per_day:
        penalty = total * min(100.0, policy.percent_per_day * lateness.days) / 100
    else:
        penalty = policy.points if policy.points else total * policy.percent / 100
    return round_points(min(max(total, 0.0), penalty))


def apply_late_policy(grade: StudentGrade, policy: LatePolicy, lateness: Lateness) -> StudentGrade:
    """The grade after the late penalty (recorded in `late_penalty`, with `lateness`); unchanged when on time."""
    penalty = late_penalty(grade.total, policy, lateness)
    return replace(grade, total=round_points(grade.total - penalty), late_penalty=penalty, lateness=lateness)


def late_message(grade: StudentGrade, policy: LatePolicy) -> str:
    """When it was submitted, how late, and what that cost, in one sentence for the reports; "" when no time
    is known and it was not late."""
    lateness = grade.lateness
    said = lateness.describe()
    if not lateness.late:
        return f"{said}." if lateness.submitted_at else ""
    earned = number(grade.total + grade.late_penalty)
    if over_max_days(lateness, policy):
        return f"{said}: more than the {policy.max_days} days late the rubric accepts, so it earns 0 of its {earned}."
    if policy.percent_per_day:
        share = min(100.0, policy.percent_per_day * lateness.days)
        cost = f"{lateness.days} × {policy.percent_per_day:g}% = {share:g}% of the {earned} earned"
        return f"{said}: {cost}, {number(grade.late_penalty)} points off."
    return f"{said}: {number(grade.late_penalty)} points taken off the {earned} earned ({policy.describe()})."
