"""The rubric's YAML as loaded, with the line of every key, so that any error is one line naming the file, the
line and the key, with the closest valid name for a typo."""

from __future__ import annotations

import difflib
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ValidationError
from pydantic_core import ErrorDetails

from grader.rubric.model import RubricError

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
    "datetime_type": "a date-time with its time zone (2026-12-01T23:59:00-06:00)",
    "datetime_parsing": "a date-time with its time zone (2026-12-01T23:59:00-06:00)",
    "datetime_from_date_parsing": "a date-time with its time zone (2026-12-01T23:59:00-06:00)",
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


class Source:
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
        errors = typos_first(exc)
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
            message = f"unknown key{suggestion(str(loc[-1]), allowed)}"
        elif kind == "literal_error":
            expected = [s.strip(" '") for s in first["ctx"]["expected"].replace(" or ", ",").split(",")]
            message = f"{first['input']!r} is not allowed{suggestion(str(first['input']), expected)}"
        elif kind == "value_error":
            message = str(first["ctx"]["error"])
        elif kind == "missing":
            message = "required key is missing"
        return self.error(prefix + loc, message)


def read_source(path: Path) -> Source:
    """The rubric file parsed as YAML, with the line of every key; raises RubricError naming a YAML mistake."""
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
    return Source(path, data, loader.lines)


def typos_first(exc: ValidationError) -> list[ErrorDetails]:
    """Pydantic's errors, an unknown key first: a misspelt key is also reported missing under its right name,
    and the unknown one is what the author typed."""
    return sorted(exc.errors(), key=lambda e: e["type"] not in ("extra_forbidden", "unexpected_keyword_argument"))


def suggestion(name: str, allowed: list[str]) -> str:
    """'; did you mean ...?' naming the allowed name closest to `name`, else the allowed names when few."""
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
