"""A grade as plain text: its summary, and each check's message with the instructor's change."""

from __future__ import annotations

from grader.late import late_message
from grader.rubric.model import Rubric
from grader.score import CheckResult, StudentGrade, number, rubric_sections


def summary_text(grade: StudentGrade, rubric: Rubric) -> str:
    """A plain-text summary of a grade: total, the rubric's sections, integrity flags, how the notebook ran."""
    who = grade.student if grade.display_name == grade.student else f"{grade.display_name} ({grade.student})"
    lines = [f"{who}: {number(grade.total)} / {number(rubric.max_total)}"]
    lines += [f"  {s.title}: {number(s.points)} / {number(s.max)}" for s in rubric_sections(grade, rubric)]
    lines += [f"Adjustment by the instructor: {b.points:+g} ({b.comment})" for b in grade.bonus]
    if note := late_message(grade, rubric.late):
        lines.append(f"  {note}")
    lines += [f"Integrity: {flag}" for flag in grade.integrity_flags]
    execution = grade.facts.execution
    lines.append(f"Notebook run: {execution.status}" + (f" ({execution.message})" if execution.message else ""))
    if execution.limits_hit:
        lines.append("Limits hit: " + ", ".join(execution.limits_hit))
    return "\n".join(lines)


def check_message(check: CheckResult) -> str:
    """A check's message, followed by the instructor's change where there was one."""
    if check.adjusted is None:
        return check.message
    return (
        f"{check.message} Adjusted by the instructor from {number(check.adjusted.from_points)} to "
        f"{number(check.points)} points: {check.adjusted.comment}"
    )
