"""grades.json: every student's grade with each section and check of the rubric, lateness and near-copies."""

from __future__ import annotations

import json
from collections.abc import Iterable
from functools import partial
from pathlib import Path
from typing import Any

from grader.archive import Ignored
from grader.atomic_write import atomic_write
from grader.export.rows import guarded_rows
from grader.isolation import GRADES_JSON, StageFailure, StageGuard
from grader.lateness import Lateness
from grader.near_copies import NearCopy, similar_to
from grader.rubric.model import Rubric
from grader.score import CheckResult, StudentGrade, number, rubric_sections


def _check_entry(check: CheckResult) -> dict[str, Any]:
    entry: dict[str, Any] = {
        "id": check.id,
        "points": float(check.points),
        "max": float(check.max),
        "passed": bool(check.passed),
        "message": check.message,
    }
    if check.adjusted is not None:
        entry["adjusted"] = {"from": float(check.adjusted.from_points), "comment": check.adjusted.comment}
    return entry


def grade_entry(grade: StudentGrade, rubric: Rubric, similar: list[tuple[str, float]] | None = None) -> dict[str, Any]:
    """One student's entry of grades.json, with every section and check of the rubric.

    A check an instructor adjusted carries `adjusted` (the grader's points and the comment); `bonus` lists
    points added to the total by hand; `similar` lists the students whose own code is nearly this one's.
    """
    sections = {
        section.id: {
            "points": float(section.points),
            "max": number(section.max),
            "checks": [_check_entry(c) for c in section.checks],
        }
        for section in rubric_sections(grade, rubric)
    }
    origin = grade.origin
    return {
        "student": grade.student,
        "name": origin.name,
        "lms": origin.lms,
        "status": grade.status,
        "message": grade.message,
        **lateness_entry(grade.lateness),
        "late_penalty": float(grade.late_penalty),  # already taken off `total`
        "total": float(grade.total),
        "max_total": number(rubric.max_total),
        "integrity": list(grade.integrity_flags),
        "review": list(grade.review),
        "limits_hit": list(grade.facts.execution.limits_hit),
        "ignored": list(origin.superseded),
        "sections": sections,
        "bonus": [{"points": float(b.points), "comment": b.comment} for b in grade.bonus],
        "similar": [{"student": other, "score": score} for other, score in similar or []],
    }


def lateness_entry(lateness: Lateness) -> dict[str, Any]:
    """grades.json's account of lateness: late or not, when submitted (ISO, with its zone) and how late."""
    late_by = lateness.late_by
    return {
        "late": lateness.late,
        "submitted_at": lateness.submitted_at.isoformat() if lateness.submitted_at else None,
        "late_by_minutes": round(late_by.total_seconds() / 60, 1) if late_by is not None else None,
        "late_days": lateness.days,
    }


def _failed_entry(grade: StudentGrade, failure: StageFailure, rubric: Rubric) -> dict[str, Any]:
    empty = {"points": 0.0, "max": 0, "checks": []}
    return {
        "student": grade.student,
        "name": "",
        "lms": "",
        "status": "error",
        "message": failure.message,
        **lateness_entry(Lateness()),
        "late_penalty": 0.0,
        "total": 0.0,
        "max_total": 0,
        "integrity": [],
        "review": [],
        "limits_hit": [],
        "ignored": [],
        "sections": {section.id: dict(empty) for section in rubric.sections},
        "bonus": [],
        "similar": [],
    }


def write_grades_json(
    grades: list[StudentGrade],
    path: Path,
    rubric: Rubric,
    guard: StageGuard | None = None,
    pairs: Iterable[NearCopy] = (),
    ignored: Iterable[Ignored] = (),
) -> None:
    """Writes grades.json: {"students": [one `grade_entry` per student], "ignored": [files not graded]}, with
    each student's near-copies."""
    similar = similar_to(pairs)

    def entry(grade: StudentGrade) -> dict[str, Any]:
        return grade_entry(grade, rubric, similar.get(grade.student))

    entries = guarded_rows(grades, GRADES_JSON, entry, partial(_failed_entry, rubric=rubric), guard)
    not_graded = [{"path": i.path, "reason": i.reason} for i in ignored]
    atomic_write(path, json.dumps({"students": entries, "ignored": not_graded}, indent=1, ensure_ascii=False) + "\n")
