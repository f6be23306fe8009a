"""Loads `rubric.yaml`, the whole description of a homework, into one frozen value that every stage receives.

The file's structure is a pydantic schema; each check's parameters are validated by the schema of its check
kind (`grader.checks`). Every error is one line naming the file, the line and the key, with the closest
valid name for a typo. Paths in a rubric resolve relative to the rubric file.
"""

from __future__ import annotations

import difflib
import functools
import importlib.util
import re
import sys
from dataclasses import asdict, dataclass, field, replace
from datetime import datetime
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, Field, ValidationError, field_validator, model_validator
from pydantic_core import ErrorDetails

from grader.assignment import FIT_ARGUMENTS, Assignment, Identifier, Spec
from grader.checks import INTEGRITY, KINDS, CheckKind, Params
from grader.checks.base import name_key
from grader.errors import GraderError
from grader.facts import ProbeRequest
from grader.kernel_env import DEFAULT_REQUIREMENTS, normalize_requirements
from grader.sandbox import Limits

# Two submissions are flagged as near-copies when this share of the smaller one's own code is shared.
DEFAULT_SIMILARITY_THRESHOLD = 0.7
# How many notebooks `grade serve` accepts from one student in an hour, unless the rubric's `service:` says.
DEFAULT_SUBMISSIONS_PER_HOUR = 10
Visibility = Literal["visible", "hidden"]  # whether a student sees a check's verdict before the due date
# Pydantic's error types for a value of the wrong type, and what to call the type it wanted.
_EXPECTED = {
    "int_type": "a whole number",
    "int_parsing": "a whole number",
    "int_from_float": "a whole number",
    "float_type": "a number",
    "float_parsing": "a number",
    "bool_type": "true or false",
    "bool_parsing": "true or false",
    "string_type": "text",
    "none_required": "nothing (null)",
    "list_type": "a list",
    "dict_type": "a mapping",
    "model_type": "a mapping",
    "model_attributes_type": "a mapping",
}
# Pydantic's error types for a number out of bounds, and how to say the bound.
_BOUNDS = {
    "greater_than_equal": ("ge", "at least"),
    "greater_than": ("gt", "more than"),
    "less_than_equal": ("le", "at most"),
    "less_than": ("lt", "less than"),
}
# Errors whose location ends with a key the file lacks or should not have.
_KEY_ERRORS = ("missing", "extra_forbidden", "unexpected_keyword_argument")
# grades.csv's columns beside the sections' (before them, then after): no section may take one of these names.
GRADEBOOK_COLUMNS = (("student", "name"), ("bonus", "late", "late_penalty", "total", "status", "message"))
# Keys of a check entry that are the rubric's, not the check kind's parameters.
_ENTRY_KEYS = ("kind", "points", "title", "hint", "visibility")
_ASSIGNMENT_KEYS = tuple(Assignment.model_fields)


class RubricError(GraderError):
    """The rubric file is invalid; the message names the file, the key and, where known, the line."""


@dataclass(frozen=True, slots=True)
class CheckSpec:
    id: str
    title: str
    points: float
    kind: str = ""
    params: Params = field(default_factory=Params)
    hint: str = ""
    hidden: bool = False  # `visibility: hidden`: before `due`, a student sees the check and its points, no verdict


@dataclass(frozen=True, slots=True)
class SectionSpec:
    id: str
    title: str
    points: float
    checks: tuple[CheckSpec, ...]
    keywords: tuple[str, ...] = ()  # code words that mark the section's cells in a notebook
    integrity: tuple[str, ...] = ()  # integrity kinds whose evidence zeroes this section


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
class ServiceSettings:
    """What `grade serve` allows each student (`service:` in the rubric)."""

    submissions_per_hour: int = DEFAULT_SUBMISSIONS_PER_HOUR


@dataclass(frozen=True, slots=True)
class Environment:
    """The packages the homework's kernel has (`environment.requirements`, pip's requirement syntax)."""

    requirements: tuple[str, ...] = DEFAULT_REQUIREMENTS


@dataclass(frozen=True, slots=True)
class Rubric:
    title: str  # the homework's name, in page titles and as the Canvas gradebook column
    path: Path
    reference: Path
    limits: Limits
    sections: tuple[SectionSpec, ...]
    assignment: Assignment = field(default_factory=Assignment)
    template: Path | None = None  # the notebook handed to students; its lines are nobody's own code
    similarity_threshold: float = DEFAULT_SIMILARITY_THRESHOLD
    late: LatePolicy = LatePolicy()
    dataset: Path | None = None  # the file served to notebooks, when the rubric names one
    custom_checks: Path | None = None
    environment: Environment = Environment()
    due: datetime | None = None
    service: ServiceSettings = ServiceSettings()

    @property
    def max_total(self) -> float:
        return sum(s.points for s in self.sections)

    @property
    def accuracy_margin(self) -> float:
        return self.assignment.accuracy_margin

    def probe_request(self) -> ProbeRequest:
        """What every run must record for this rubric to be scored."""
        names = {
            name
            for section in self.sections
            for check in section.checks
            for name in KINDS[check.kind].variables(check.params, self.assignment)
        }
        return self.assignment.probe_request(names)


# ------------------------------------------------------------------------------------------- the file's schema


class _Check(Spec):
    kind: str
    points: float = Field(ge=0)
    title: str
    hint: str = ""
    visibility: Visibility = "visible"


class _Section(Spec):
    title: str | None = None
    visibility: Visibility = "visible"
    points: float = Field(ge=0)
    keywords: list[str] = []
    integrity: list[str] = []
    checks: dict[Identifier, dict[str, Any]]

    @model_validator(mode="after")
    def _points_add_up(self) -> _Section:
        given = [entry.get("points") for entry in self.checks.values()]
        points = [p for p in given if isinstance(p, int | float) and not isinstance(p, bool)]
        if len(points) < len(given):
            return self  # the check whose points are not a number is reported on its own line
        total = sum(points)
        if abs(total - self.points) > 1e-9:
            raise ValueError(f"check points add up to {total:g}, but the section is worth {self.points:g}")
        return self


class _Late(Spec):
    penalty_points: float | None = Field(None, ge=0)
    penalty_percent: float | None = Field(None, ge=0, le=100)

    @model_validator(mode="after")
    def _one(self) -> _Late:
        if self.penalty_points is not None and self.penalty_percent is not None:
            raise ValueError("give penalty_points or penalty_percent, not both")
        return self


class _Service(Spec):
    submissions_per_hour: int = Field(DEFAULT_SUBMISSIONS_PER_HOUR, ge=1)


class _Environment(Spec):
    requirements: list[str]

    @field_validator("requirements")
    @classmethod
    def _requirements(cls, requirements: list[str]) -> list[str]:
        normalize_requirements(requirements)  # its ValueError says what to change
        return requirements


class _RubricFile(Spec):
    title: str | None = Field(None, description="the homework's name; default: the rubric's folder name")
    reference: str = "reference/solution.ipynb"
    template: str | None = None
    custom_checks: str | None = Field(None, description="a Python file beside the rubric that adds check kinds")
    similarity_threshold: float = Field(DEFAULT_SIMILARITY_THRESHOLD, gt=0, le=1)
    limits: Limits = Limits()
    late: _Late = _Late()
    environment: _Environment | None = None
    due: datetime | None = None
    service: _Service = _Service()
    sections: dict[Identifier, _Section] = Field(min_length=1)

    @field_validator("due")
    @classmethod
    def _due_has_time_zone(cls, due: datetime | None) -> datetime | None:
        if due is not None and due.tzinfo is None:
            raise ValueError(f"due needs a time zone, e.g. {due.isoformat(timespec='minutes')}+01:00 or ...Z")
        return due

    @model_validator(mode="after")
    def _limits_positive(self) -> _RubricFile:
        for name, value in asdict(self.limits).items():
            if value < 1:
                raise ValueError(f"limits.{name} must be at least 1, found {value:g}")
        return self


# ------------------------------------------------------------------------------------------- loading


class _LineLoader(yaml.SafeLoader):
    """Remembers the line of every mapping key, so errors can point at it."""

    lines: dict[tuple[int, str], int]


def _construct_mapping(loader: _LineLoader, node: yaml.MappingNode) -> dict[str, Any]:
    mapping: dict[str, Any] = {}
    for key_node, value_node in node.value:
        key = loader.construct_object(key_node)
        if key in mapping:
            raise RubricError(f"{loader.name}: {key} (line {key_node.start_mark.line + 1}): duplicate key {key!r}")
        mapping[key] = loader.construct_object(value_node, deep=True)
        loader.lines[id(mapping), key] = key_node.start_mark.line + 1
    return mapping


_LineLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)


class _Source:
    """The rubric's text as loaded, to name the line of any key in an error."""

    def __init__(self, path: Path, data: Any, lines: dict[tuple[int, str], int]) -> None:
        self.path, self.data, self.lines = path, data, lines

    def line(self, loc: tuple[Any, ...]) -> int | None:
        """The line of the deepest key of `loc` that the file has."""
        node, found = self.data, None
        for key in loc:
            if isinstance(node, dict) and key in node:
                found = self.lines.get((id(node), key), found)
                node = node[key]
            elif isinstance(node, list) and isinstance(key, int) and 0 <= key < len(node):
                node = node[key]
            else:
                break
        return found

    def error(self, loc: tuple[Any, ...], problem: str) -> RubricError:
        where = ".".join(str(k) for k in loc) or "rubric"
        line = self.line(loc)
        at = f" (line {line})" if line else ""
        return RubricError(f"{self.path}: {where}{at}: {problem}")

    def node(self, loc: tuple[Any, ...]) -> Any:
        node = self.data
        for key in loc:
            node = node[key]
        return node

    def keys(self, prefix: tuple[Any, ...], loc: tuple[Any, ...], kind: str) -> tuple[Any, ...]:
        """The keys of pydantic's error location that are the file's own: without the tags it adds for a union's
        members ("int", "list[...]"), a validator ("function-after[...]") or a dict's key ("[key]")."""
        node, keys = self.node(prefix), []
        for n, key in enumerate(loc):
            if isinstance(node, dict) and key in node or isinstance(node, list) and isinstance(key, int):
                keys.append(key)
                node = node[key] if isinstance(node, dict) or 0 <= key < len(node) else None
            elif n == len(loc) - 1 and kind in _KEY_ERRORS:
                keys.append(key)  # the key that is missing or unknown
        return tuple(keys)

    def invalid(self, exc: ValidationError, prefix: tuple[Any, ...], schema: type[BaseModel]) -> RubricError:
        """The first of pydantic's errors, as one line with a suggestion for a misspelt key or value."""
        errors = _typos_first(exc)
        first = errors[0]
        kind, message = first["type"], first["msg"]
        loc = self.keys(prefix, first["loc"], kind)
        if kind in _EXPECTED:
            # A union's members fail one by one at the same place: name every type that was allowed.
            allowed = [
                _EXPECTED[e["type"]]
                for e in errors
                if e["type"] in _EXPECTED and self.keys(prefix, e["loc"], e["type"]) == loc
            ]
            message = f"expected {' or '.join(dict.fromkeys(allowed))}, found {first['input']!r}"
        elif kind in _BOUNDS:
            bound, words = _BOUNDS[kind]
            message = f"must be {words} {first['ctx'][bound]}, found {first['input']!r}"
        elif kind in ("extra_forbidden", "unexpected_keyword_argument"):
            allowed = _allowed_keys(schema, loc[:-1])
            message = f"unknown key{_suggestion(str(loc[-1]), allowed)}"
        elif kind == "literal_error":
            expected = [s.strip(" '") for s in first["ctx"]["expected"].replace(" or ", ",").split(",")]
            message = f"{first['input']!r} is not allowed{_suggestion(str(first['input']), expected)}"
        elif kind == "value_error":
            message = str(first["ctx"]["error"])
        elif kind == "missing":
            message = "required key is missing"
        return self.error(prefix + loc, message)


def _typos_first(exc: ValidationError) -> list[ErrorDetails]:
    """Pydantic's errors, an unknown key first: a misspelt key is also reported missing under its right name,
    and the unknown one is what the author typed."""
    return sorted(exc.errors(), key=lambda e: e["type"] not in ("extra_forbidden", "unexpected_keyword_argument"))


def _suggestion(name: str, allowed: list[str]) -> str:
    close = difflib.get_close_matches(name, allowed, n=1, cutoff=0.6)
    if close:
        return f"; did you mean {close[0]!r}?"
    return f" (allowed: {', '.join(allowed)})" if allowed and len(allowed) <= 12 else ""


def _allowed_keys(schema: type[BaseModel], loc: tuple[Any, ...]) -> list[str]:
    """The keys the schema accepts at `loc` (a path of field names, dict keys and list indices)."""
    model: Any = schema
    for key in loc:
        info = getattr(model, "model_fields", {}).get(key) if isinstance(key, str) else None
        if info is None:
            continue  # a dict key or a list index: the value type is what the annotation's last argument says
        model = _inner_model(info.annotation)
    fields = getattr(model, "model_fields", None)
    if fields is None and hasattr(model, "__dataclass_fields__"):
        fields = model.__dataclass_fields__
    return sorted(fields or ())


def _inner_model(annotation: Any) -> Any:
    args = getattr(annotation, "__args__", ())
    return _inner_model(args[-1]) if args else annotation


def load_rubric(path: Path) -> Rubric:
    """Reads and validates a rubric; raises RubricError with a one-line, actionable message."""
    source = _read(path)
    data = source.data
    if not isinstance(data, dict):
        raise source.error((), "expected a mapping of keys (reference, sections, ...)")
    known = sorted({*_RubricFile.model_fields, *_ASSIGNMENT_KEYS})
    for key in data:
        if key not in known:
            raise source.error((key,), f"unknown key{_suggestion(str(key), known)}")
    assignment_data = {k: v for k, v in data.items() if k in _ASSIGNMENT_KEYS}
    file_data = {k: v for k, v in data.items() if k not in _ASSIGNMENT_KEYS}
    try:
        parsed = _RubricFile.model_validate(file_data)
    except ValidationError as exc:
        raise source.invalid(exc, (), _RubricFile) from None
    try:
        assignment = Assignment.model_validate(assignment_data)
    except ValidationError as exc:
        raise source.invalid(exc, (), Assignment) from None
    _check_keras_names(source, assignment)
    for name in assignment.fit:
        if name not in FIT_ARGUMENTS:
            raise source.error(("fit", name), f"fit has no argument {name!r}{_suggestion(name, list(FIT_ARGUMENTS))}")
    base = path.parent
    custom = (base / parsed.custom_checks).resolve() if parsed.custom_checks else None
    if custom is not None:
        load_custom_checks(custom, source)
    sections = tuple(_section(source, section_id, raw, assignment) for section_id, raw in parsed.sections.items())
    late = LatePolicy(points=parsed.late.penalty_points or 0.0, percent=parsed.late.penalty_percent or 0.0)
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
        dataset=(base / assignment.dataset.npz).resolve() if assignment.dataset.npz else None,
        custom_checks=custom,
        environment=Environment(tuple(parsed.environment.requirements)) if parsed.environment else Environment(),
        due=parsed.due,
        service=ServiceSettings(parsed.service.submissions_per_hour),
    )


def _read(path: Path) -> _Source:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise RubricError(f"cannot read rubric {path}: {exc.strerror}") from None
    loader = _LineLoader(text)
    loader.name, loader.lines = str(path), {}
    try:
        data = loader.get_single_data()
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        at = f" (line {mark.line + 1}, column {mark.column + 1})" if mark is not None else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise RubricError(f"{path}{at}: not valid YAML: {problem}") from None
    finally:
        loader.dispose()
    return _Source(path, data, loader.lines)


def _section(source: _Source, section_id: str, raw: Any, assignment: Assignment) -> SectionSpec:
    where = ("sections", section_id)
    if any(section_id in columns for columns in GRADEBOOK_COLUMNS):
        raise source.error(where, f"{section_id!r} is a column of grades.csv already: give the section another name")
    for name in raw.integrity:
        if name not in INTEGRITY:
            raise source.error(
                (*where, "integrity"), f"unknown integrity check {name!r}{_suggestion(name, [*INTEGRITY])}"
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
    source: _Source, where: tuple[str, ...], check_id: str, entry: dict[str, Any], assignment: Assignment
) -> CheckSpec:
    rubric_part = {k: v for k, v in entry.items() if k in _ENTRY_KEYS}
    try:
        spec = _Check.model_validate(rubric_part)
    except ValidationError as exc:
        raise source.invalid(exc, where, _Check) from None
    kind: CheckKind[Any] | None = KINDS.get(spec.kind)
    if kind is None:
        raise source.error((*where, "kind"), f"unknown check kind {spec.kind!r}{_suggestion(spec.kind, sorted(KINDS))}")
    params = {k: v for k, v in entry.items() if k not in _ENTRY_KEYS}
    try:
        validated = kind.params.model_validate(params)
    except ValidationError as exc:
        first = _typos_first(exc)[0]
        if first["type"] == "extra_forbidden":
            name = str(first["loc"][0])
            allowed = sorted(kind.params.model_fields)
            raise source.error(
                (*where, name), f"check kind {spec.kind} has no parameter {name!r}{_suggestion(name, allowed)}"
            ) from None
        raise source.invalid(exc, where, kind.params) from None
    problem = validated.check_assignment(assignment)
    if problem:
        raise source.error(where, f"{spec.kind}: {problem}")
    return CheckSpec(check_id, spec.title, spec.points, spec.kind, validated, spec.hint, spec.visibility == "hidden")


def _check_keras_names(source: _Source, assignment: Assignment) -> None:
    """Every name the rubric gives Keras is one of Keras's: the dataset loader, the layers, the loss, the
    optimizer and the metrics (a typo here would otherwise show only as a reference that does not score 100)."""
    loaders = keras_names("datasets")
    if loaders and assignment.dataset.loader not in loaders:
        name = assignment.dataset.loader
        problem = f"{name!r} is not a keras.datasets loader{_suggestion(name, sorted(loaders))}"
        raise source.error(("dataset", "loader"), problem)
    layers = keras_names("layers")
    for n, layer in enumerate(assignment.model.layers):
        if layers and layer.class_name not in layers:
            problem = f"{layer.class_name!r} is not a Keras layer{_suggestion(layer.class_name, sorted(layers))}"
            raise source.error(("model", "layers", n), problem)
    settings = assignment.compile
    named: list[tuple[tuple[str | int, ...], str | None, str]] = [
        (("compile", "loss"), settings.loss, "losses"),
        (("compile", "optimizer"), settings.optimizer, "optimizers"),
        *((("compile", "metrics", n), metric, "metrics") for n, metric in enumerate(settings.metrics)),
    ]
    for where, given, module in named:
        # One spelling per name, a function's (categorical_crossentropy) before its class's (CategoricalCrossentropy).
        known = {name_key(n): n for n in sorted(keras_names(module), key=str.islower)}
        if module == "metrics":
            known |= {"accuracy": "accuracy", "acc": "acc"}  # compile picks the accuracy from the labels
        if given is not None and known and name_key(given) not in known:
            close = difflib.get_close_matches(name_key(given), list(known), n=1, cutoff=0.6)
            hint = f"; did you mean {known[close[0]]!r}?" if close else ""
            raise source.error(where, f"{given!r} is not one of keras.{module}{hint}")


@functools.cache
def keras_names(module: str) -> frozenset[str]:
    """What `keras.<module>` offers (classes, functions, submodules), read from its API file without importing
    Keras (which takes seconds); empty when Keras is not installed."""
    spec = importlib.util.find_spec("keras")
    if spec is None or not spec.submodule_search_locations:
        return frozenset()
    init = Path(next(iter(spec.submodule_search_locations))) / module / "__init__.py"
    # keras/layers/__init__.py: "from keras.src.layers.core.dense import Dense as Dense", or the same in brackets
    names = re.findall(r"\b\w+ as (\w+)\b", init.read_text(encoding="utf-8"))
    return frozenset(name for name in names if not name.startswith("_"))


def load_custom_checks(path: Path, source: _Source) -> None:
    """Runs the instructor's check file (in the grader, never in a student's kernel); its `@check_kind`
    decorators add kinds the rubric can name."""
    if not path.is_file():
        raise source.error(("custom_checks",), f"file not found: {path}")
    module_name = f"grader_custom_checks_{abs(hash(str(path)))}"
    spec = importlib.util.spec_from_file_location(module_name, path)
    if spec is None or spec.loader is None:
        raise source.error(("custom_checks",), f"not a Python file: {path}")
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module
    try:
        spec.loader.exec_module(module)
    except GraderError:
        raise
    except Exception as exc:
        raise source.error(("custom_checks",), f"{path.name} failed to load: {type(exc).__name__}: {exc}") from None
