"""Loads `rubric.yaml`, the whole description of a homework, into one frozen `Rubric`.

The file's structure is a pydantic schema; each check's parameters are validated by the schema of its check
kind (`grader.checks`). Every error is one line naming the file, the line and the key, with the closest
valid name for a typo. Paths in a rubric resolve relative to the rubric file.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from grader.assignment import FIT_ARGUMENTS, Assignment
from grader.checks import INTEGRITY, KINDS, CheckKind
from grader.rubric.custom_checks import load_custom_checks
from grader.rubric.keras_names import check_keras_names
from grader.rubric.model import (
    GRADEBOOK_COLUMNS,
    CheckSpec,
    Environment,
    LatePolicy,
    Rubric,
    SectionSpec,
    ServiceSettings,
)
from grader.rubric.schema import ASSIGNMENT_KEYS, ENTRY_KEYS, CheckEntry, RubricFile, SectionEntry
from grader.rubric.source import Source, read_source, suggestion, typos_first


def load_rubric(path: Path) -> Rubric:
    """Reads and validates a rubric; raises RubricError with a one-line, actionable message."""
    source = read_source(path)
    data = source.data
    if not isinstance(data, dict):
        raise source.error((), "expected a mapping of keys (reference, sections, ...)")
    known = sorted({*RubricFile.model_fields, *ASSIGNMENT_KEYS})
    for key in data:
        if key not in known:
            raise source.error((key,), f"unknown key{suggestion(str(key), known)}")
    assignment_data = {k: v for k, v in data.items() if k in ASSIGNMENT_KEYS}
    file_data = {k: v for k, v in data.items() if k not in ASSIGNMENT_KEYS}
    try:
        parsed = RubricFile.model_validate(file_data)
    except ValidationError as exc:
        raise source.invalid(exc, (), RubricFile) from None
    try:
        assignment = Assignment.model_validate(assignment_data)
    except ValidationError as exc:
        raise source.invalid(exc, (), Assignment) from None
    check_keras_names(source, assignment)
    for name in assignment.fit:
        if name not in FIT_ARGUMENTS:
            raise source.error(("fit", name), f"fit has no argument {name!r}{suggestion(name, list(FIT_ARGUMENTS))}")
    base = path.parent
    custom = (base / parsed.custom_checks).resolve() if parsed.custom_checks else None
    if custom is not None:
        load_custom_checks(custom, source)
    sections = tuple(_section(source, section_id, raw, assignment) for section_id, raw in parsed.sections.items())
    given = parsed.late
    late = LatePolicy(
        points=given.penalty_points or 0.0,
        percent=given.penalty_percent or 0.0,
        percent_per_day=given.penalty_percent_per_day or 0.0,
        grace_minutes=given.grace_minutes,
        max_days=given.max_days,
    )
    total = sum(s.points for s in sections)
    if late.points > total:
        raise source.error(("late", "penalty_points"), f"must be at most {total:g}, found {late.points:g}")
    return Rubric(
        title=parsed.title or path.resolve().parent.name,
        path=path,
        reference=(base / parsed.reference).resolve(),
        limits=parsed.limits,
        sections=sections,
        assignment=assignment,
        template=(base / parsed.template).resolve() if parsed.template else None,
        similarity_threshold=parsed.similarity_threshold,
        late=late,
        due=parsed.due,
        service=ServiceSettings(parsed.service.submissions_per_hour),
        dataset=(base / assignment.dataset.npz).resolve() if assignment.dataset.npz else None,
        custom_checks=custom,
        environment=Environment(tuple(parsed.environment.requirements)) if parsed.environment else Environment(),
    )


def _section(source: Source, section_id: str, raw: SectionEntry, assignment: Assignment) -> SectionSpec:
    where = ("sections", section_id)
    if any(section_id in columns for columns in GRADEBOOK_COLUMNS):
        raise source.error(where, f"{section_id!r} is a column of grades.csv already: give the section another name")
    for name in raw.integrity:
        if name not in INTEGRITY:
            raise source.error(
                (*where, "integrity"), f"unknown integrity check {name!r}{suggestion(name, [*INTEGRITY])}"
            )
    checks = tuple(
        _check(source, (*where, "checks", check_id), check_id, entry, assignment)
        for check_id, entry in raw.checks.items()
    )
    if raw.visibility == "hidden":
        checks = tuple(replace(check, hidden=True) for check in checks)
    return SectionSpec(
        id=section_id,
        title=raw.title or section_id,
        points=raw.points,
        checks=checks,
        keywords=tuple(raw.keywords),
        integrity=tuple(raw.integrity),
    )


def _check(
    source: Source, where: tuple[str, ...], check_id: str, entry: dict[str, Any], assignment: Assignment
) -> CheckSpec:
    rubric_part = {k: v for k, v in entry.items() if k in ENTRY_KEYS}
    try:
        spec = CheckEntry.model_validate(rubric_part)
    except ValidationError as exc:
        raise source.invalid(exc, where, CheckEntry) from None
    kind: CheckKind[Any] | None = KINDS.get(spec.kind)
    if kind is None:
        raise source.error((*where, "kind"), f"unknown check kind {spec.kind!r}{suggestion(spec.kind, sorted(KINDS))}")
    params = {k: v for k, v in entry.items() if k not in ENTRY_KEYS}
    try:
        validated = kind.params.model_validate(params)
    except ValidationError as exc:
        first = typos_first(exc)[0]
        if first["type"] == "extra_forbidden":
            name = str(first["loc"][0])
            allowed = sorted(kind.params.model_fields)
            raise source.error(
                (*where, name), f"check kind {spec.kind} has no parameter {name!r}{suggestion(name, allowed)}"
            ) from None
        raise source.invalid(exc, where, kind.params) from None
    problem = validated.check_assignment(assignment)
    if problem:
        raise source.error(where, f"{spec.kind}: {problem}")
    return CheckSpec(check_id, spec.title, spec.points, spec.kind, validated, spec.hint, spec.visibility == "hidden")
