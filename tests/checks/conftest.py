"""Helpers the check kinds' tests share: a section's integrity flags, and one kind's verdict under an
assignment written as a rubric writes it."""

from __future__ import annotations

import dataclasses
from typing import Any

from grader.assignment import Assignment
from grader.checks import KINDS
from grader.checks.base import Verdict
from grader.facts import Facts
from grader.score import StudentGrade
from tests.factories import CONTEXT


def section_flags(grade: StudentGrade, section_title: str) -> list[str]:
    """The integrity flags `grade` raised in the section titled `section_title`."""
    return [flag for flag in grade.integrity_flags if flag.startswith(section_title)]


def kind_verdict(kind: str, facts: Facts, assignment: dict[str, Any], **params: Any) -> Verdict:
    """One check kind's verdict under an assignment written as a rubric writes it."""
    declared = Assignment.model_validate(assignment)
    validated = KINDS[kind].params.model_validate(params)
    assert validated.check_assignment(declared) is None
    return KINDS[kind].run(facts, validated, dataclasses.replace(CONTEXT, assignment=declared))
