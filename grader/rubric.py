"""Loads `rubric.yaml` into frozen dataclasses, rejecting anything wrong with a message naming the key."""

from __future__ import annotations

from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

import yaml

from grader.errors import GraderError
from grader.kernel_env import DEFAULT_REQUIREMENTS, normalize_requirements
from grader.sandbox import Limits

# The assignment fixes the section totals; a rubric can move points between checks, not between sections.
SECTION_TOTALS = {"prepare": 10, "visualize": 10, "build": 50, "train": 20, "evaluate": 10}
# Two submissions are flagged as near-copies when this share of the smaller one's own code is shared.
DEFAULT_SIMILARITY_THRESHOLD = 0.7


class RubricError(GraderError):
    """The rubric file is invalid; the message names the file, the key and, where known, the line."""


@dataclass(frozen=True, slots=True)
class CheckSpec:
    id: str
    title: str
    points: float
    hint: str = ""


@dataclass(frozen=True, slots=True)
class SectionSpec:
    id: str
    title: str
    points: float
    checks: tuple[CheckSpec, ...]
    # Names that mark this section's code: a cell mentioning one belongs to it (feedback, error placement).
    keywords: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class LatePolicy:
    """What a late submission costs: fixed points, or a percentage of the points it earned (both 0: nothing)."""

    points: float = 0.0
    percent: float = 0.0

    def describe(self) -> str:
        if self.points:
            return f"{self.points:g} points off a late submission"
        if self.percent:
            return f"{self.percent:g}% of the points earned off a late submission"
        return "no penalty for a late submission"


@dataclass(frozen=True, slots=True)
class Environment:
    """The packages the homework's kernel has (`environment.requirements`, pip's requirement syntax)."""

    requirements: tuple[str, ...] = DEFAULT_REQUIREMENTS


@dataclass(frozen=True, slots=True)
class Rubric:
    path: Path
    reference: Path
    accuracy_margin: float
    limits: Limits
    sections: tuple[SectionSpec, ...]
    template: Path | None = None  # the notebook handed to students; its lines are nobody's own code
    similarity_threshold: float = DEFAULT_SIMILARITY_THRESHOLD
    late: LatePolicy = LatePolicy()
    environment: Environment = Environment()

    @property
    def max_total(self) -> float:
        return sum(s.points for s in self.sections)


class _LineLoader(yaml.SafeLoader):
    """Remembers the line of every mapping key, so errors can point at it."""

    lines: dict[tuple[int, str], int]


def _construct_mapping(loader: _LineLoader, node: yaml.MappingNode) -> dict[str, Any]:
    mapping = {}
    for key_node, value_node in node.value:
        key = loader.construct_object(key_node)
        if key in mapping:
            raise RubricError(f"duplicate key {key!r} at line {key_node.start_mark.line + 1}")
        mapping[key] = loader.construct_object(value_node, deep=True)
        loader.lines[id(mapping), key] = key_node.start_mark.line + 1
    return mapping


_LineLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)


class _Reader:
    def __init__(self, path: Path, lines: dict[tuple[int, str], int]) -> None:
        self.path = path
        self.lines = lines

    def fail(self, where: str, problem: str, mapping: Any = None, key: str | None = None) -> RubricError:
        line = self.lines.get((id(mapping), key)) if key is not None else None
        at = f" (line {line})" if line else ""
        return RubricError(f"{self.path}: {where}{at}: {problem}")

    def mapping(self, value: Any, where: str, allowed: set[str], required: set[str]) -> dict[str, Any]:
        if not isinstance(value, dict):
            raise self.fail(where, f"expected a mapping, found {type(value).__name__}")
        for key in value:
            if key not in allowed:
                raise self.fail(f"{where}.{key}", f"unknown key (allowed: {', '.join(sorted(allowed))})", value, key)
        for key in sorted(required - set(value)):
            raise self.fail(where, f"missing key {key!r}")
        return value

    def words(self, mapping: dict[str, Any], key: str, where: str) -> tuple[str, ...]:
        value = mapping.get(key, [])
        if not isinstance(value, list) or not all(isinstance(w, str) and w.strip() for w in value):
            raise self.fail(f"{where}.{key}", f"expected a list of names, found {value!r}", mapping, key)
        return tuple(value)

    def number(self, mapping: dict[str, Any], key: str, where: str, *, minimum: float = 0.0) -> float:
        value = mapping[key]
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise self.fail(f"{where}.{key}", f"expected a number, found {value!r}", mapping, key)
        if value < minimum:
            raise self.fail(f"{where}.{key}", f"must be at least {minimum:g}, found {value!r}", mapping, key)
        return float(value)

    def text(self, mapping: dict[str, Any], key: str, where: str, default: str = "") -> str:
        value = mapping.get(key, default)
        if not isinstance(value, str):
            raise self.fail(f"{where}.{key}", f"expected text, found {value!r}", mapping, key)
        return value


def load_rubric(path: Path, known_checks: dict[str, tuple[str, ...]]) -> Rubric:
    """Reads and validates a rubric; `known_checks` lists the check ids each section implements."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise RubricError(f"cannot read rubric {path}: {exc.strerror}") from None
    loader = _LineLoader(text)
    loader.lines = {}
    try:
        data = loader.get_single_data()
    except yaml.YAMLError as exc:
        raise RubricError(f"{path}: not valid YAML: {str(exc).splitlines()[0]}") from None
    finally:
        loader.dispose()
    reader = _Reader(path, loader.lines)
    allowed = {
        "reference",
        "template",
        "accuracy_margin",
        "similarity_threshold",
        "limits",
        "late",
        "environment",
        "sections",
    }
    top = reader.mapping(data, "rubric", allowed, {"sections"})
    reference = reader.text(top, "reference", "rubric", "reference/solution.ipynb")
    template = reader.text(top, "template", "rubric")
    margin = reader.number(top, "accuracy_margin", "rubric") if "accuracy_margin" in top else 0.03
    if margin >= 1:
        raise reader.fail("rubric.accuracy_margin", "must be below 1 (a fraction of accuracy)", top, "accuracy_margin")
    threshold = DEFAULT_SIMILARITY_THRESHOLD
    if "similarity_threshold" in top:
        threshold = reader.number(top, "similarity_threshold", "rubric")
        if not 0 < threshold <= 1:
            raise reader.fail(
                "rubric.similarity_threshold",
                f"must be above 0 and at most 1 (a share of shared code), found {threshold:g}",
                top,
                "similarity_threshold",
            )
    limits = _limits(reader, top.get("limits", {}))
    late = _late(reader, top["late"]) if "late" in top else LatePolicy()
    environment = _environment(reader, top["environment"]) if "environment" in top else Environment()
    sections_data = reader.mapping(top["sections"], "sections", set(SECTION_TOTALS), set(SECTION_TOTALS))
    sections = []
    for section_id, total in SECTION_TOTALS.items():
        where = f"sections.{section_id}"
        raw = reader.mapping(
            sections_data[section_id], where, {"title", "points", "checks", "keywords"}, {"points", "checks"}
        )
        points = reader.number(raw, "points", where)
        if points != total:
            raise reader.fail(
                f"{where}.points", f"the assignment gives this section {total} points, not {points:g}", raw, "points"
            )
        implemented = known_checks[section_id]
        checks_data = reader.mapping(raw["checks"], f"{where}.checks", set(implemented), set(implemented))
        checks = []
        for check_id in implemented:
            cwhere = f"{where}.checks.{check_id}"
            craw = reader.mapping(checks_data[check_id], cwhere, {"title", "points", "hint"}, {"points", "title"})
            checks.append(
                CheckSpec(
                    id=check_id,
                    title=reader.text(craw, "title", cwhere),
                    points=reader.number(craw, "points", cwhere),
                    hint=reader.text(craw, "hint", cwhere),
                )
            )
        check_sum = sum(c.points for c in checks)
        if abs(check_sum - points) > 1e-9:
            raise reader.fail(
                f"{where}.checks",
                f"check points add up to {check_sum:g}, but the section is worth {points:g}",
                raw,
                "checks",
            )
        title = reader.text(raw, "title", where, section_id)
        sections.append(SectionSpec(section_id, title, points, tuple(checks), reader.words(raw, "keywords", where)))
    return Rubric(
        path=path,
        reference=(path.parent / reference).resolve(),
        accuracy_margin=margin,
        limits=limits,
        sections=tuple(sections),
        template=(path.parent / template).resolve() if template else None,
        similarity_threshold=threshold,
        late=late,
        environment=environment,
    )


def _limits(reader: _Reader, raw: Any) -> Limits:
    names = {f.name for f in fields(Limits)}
    data = reader.mapping(raw, "limits", names, set())
    values: dict[str, Any] = {}
    for f in fields(Limits):
        if f.name in data:
            number = reader.number(data, f.name, "limits", minimum=1)
            values[f.name] = int(number) if f.type in ("int", int) else number
    return Limits(**values)


def _late(reader: _Reader, raw: Any) -> LatePolicy:
    """`late: {penalty_points: N}` or `late: {penalty_percent: P}`; one of the two, or neither for no penalty."""
    data = reader.mapping(raw, "late", {"penalty_points", "penalty_percent"}, set())
    if len(data) > 1:
        raise reader.fail("late", "give penalty_points or penalty_percent, not both", data, "penalty_percent")
    if "penalty_percent" in data:
        percent = reader.number(data, "penalty_percent", "late")
        if percent > 100:
            raise reader.fail(
                "late.penalty_percent", f"must be at most 100, found {percent:g}", data, "penalty_percent"
            )
        return LatePolicy(percent=percent)
    if "penalty_points" in data:
        points = reader.number(data, "penalty_points", "late")
        total = sum(SECTION_TOTALS.values())
        if points > total:
            raise reader.fail(
                "late.penalty_points", f"must be at most {total}, found {points:g}", data, "penalty_points"
            )
        return LatePolicy(points=points)
    return LatePolicy()


def _environment(reader: _Reader, raw: Any) -> Environment:
    """`environment: {requirements: [numpy, keras>=3.3, ...]}`: checked here, built by grader.kernel_env."""
    data = reader.mapping(raw, "environment", {"requirements"}, {"requirements"})
    requirements = data["requirements"]
    where = "environment.requirements"
    if not isinstance(requirements, list) or not all(isinstance(r, str) for r in requirements):
        raise reader.fail(where, f"expected a list of requirements, found {requirements!r}", data, "requirements")
    try:
        normalize_requirements(requirements)
    except ValueError as exc:
        raise reader.fail(where, str(exc), data, "requirements") from None
    return Environment(tuple(requirements))
