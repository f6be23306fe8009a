"""Scoring facts under a rubric: a perfect run earns full marks, and a rubric edit re-scores the same facts."""

from __future__ import annotations

import dataclasses
from typing import Any

from grader.score import score_facts
from tests.factories import (
    CONTEXT,
    check,
    images,
    make_facts,
    make_grade,
    rubric,
)


def test_perfect_facts_score_full_marks() -> None:
    grade = make_grade()
    assert grade.total == 100 and grade.status == "graded" and not grade.integrity_flags
    assert all(c.passed and c.message for s in grade.sections for c in s.checks)


def test_rubric_points_and_hints_rescore_without_facts_changing() -> None:
    base = rubric()
    prepare = base.sections[0]
    changes: dict[str, dict[str, Any]] = {
        "names": {"points": 0},
        "x_float": {"points": 2, "hint": "Use astype('float32')."},
    }
    moved = tuple(dataclasses.replace(c, **changes.get(c.id, {})) for c in prepare.checks)
    edited = dataclasses.replace(base, sections=(dataclasses.replace(prepare, checks=moved), *base.sections[1:]))
    bad_dtype = images("train", dtype="uint8")
    grade = score_facts("ada", make_facts(variables={"x_train": bad_dtype}), edited, CONTEXT)
    verdict = check(grade, "x_float")
    assert verdict.max == 2 and verdict.points == 0 and verdict.message.endswith("Use astype('float32').")
