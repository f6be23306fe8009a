"""docs/rubric.md is complete: every check kind with each of its parameters in an example, every integrity kind,
and every fact a custom check can read, so that writing a rubric or a check needs no reading of grader/."""

from __future__ import annotations

import typing

import msgspec

from grader import facts as facts_module
from grader.checks import INTEGRITY, KINDS
from tests.conftest import ROOT

DOCS = ROOT / "docs" / "rubric.md"


def _row(docs: str, first: str) -> str:
    """The docs' table row that starts with the cell `first`."""
    return next(line for line in docs.splitlines() if line.startswith(f"| {first} |"))


def test_every_built_in_kind_is_documented_with_an_example() -> None:
    docs = DOCS.read_text(encoding="utf-8")
    for name, kind in KINDS.items():
        assert f"| `{name}` |" in docs and f"{{kind: {name}," in docs, name
        row = _row(docs, f"`{name}`")
        for parameter in kind.params.model_fields:
            assert f"`{parameter}`" in row and f"{parameter}:" in row, (name, parameter)  # named, and in an example
    for name in INTEGRITY:
        assert f"`{name}`" in docs, name


def _structures(root: type) -> list[type]:
    """Every msgspec structure reachable from `root`'s fields."""
    found: list[type] = []

    def walk(annotation: object) -> None:
        for argument in typing.get_args(annotation):
            walk(argument)
        if isinstance(annotation, type) and issubclass(annotation, msgspec.Struct) and annotation not in found:
            found.append(annotation)
            hints = typing.get_type_hints(annotation)  # in the namespace of the module that defines it
            for name in annotation.__struct_fields__:
                walk(hints[name])

    walk(root)
    return found


def test_every_fact_a_custom_check_can_read_is_documented() -> None:
    """Each structure of the facts has a row naming every field."""
    docs = DOCS.read_text(encoding="utf-8")
    for structure in _structures(facts_module.Facts):
        row = _row(docs, f"`{structure.__name__}`")
        for name in structure.__struct_fields__:
            assert f"`{name}`" in row, (structure.__name__, name)
