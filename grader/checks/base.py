"""What every check kind is made of: the verdict it returns, the context it reads, and the registry.

A check kind is a pure function of the facts, its parameters (a pydantic model validated from the rubric
entry) and the scoring context (the rubric's assignment and the thresholds calibrated on the reference). It
returns a `Verdict`: whether it passed, the fraction of its points earned, and a message a beginner can act
on. An integrity kind returns evidence that a result was faked; the sections that name it then earn zero.
Built-in kinds live in the modules of this package, grouped by what they look at; an instructor's file can
add more with the same decorator.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from pydantic import BaseModel, ConfigDict

from grader.assignment import Assignment
from grader.facts import CompiledFacts, Facts, MetricFacts

# What Keras may name after "accuracy": the metric it picks for that string, from the labels.
ACCURACY_KINDS = {"accuracy", "categorical_accuracy", "sparse_categorical_accuracy", "binary_accuracy"}
# Terminal colour and cursor codes, which error messages from a kernel carry.
_CONTROL = re.compile(r"\x1b\[[0-?]*[ -/]*[@-~]|[\x00-\x08\x0b-\x1f\x7f]")


@dataclass(frozen=True, slots=True)
class Verdict:
    passed: bool
    message: str
    fraction: float | None = None  # partial credit; None means all (passed) or nothing (failed)

    @property
    def earned(self) -> float:
        if self.fraction is not None:
            return max(0.0, min(1.0, self.fraction))
        return 1.0 if self.passed else 0.0


@dataclass(frozen=True, slots=True)
class Context:
    """What scoring needs beside the facts: the assignment, and thresholds calibrated on the reference run."""

    accuracy_threshold: float | None
    reference_accuracy: float | None
    assignment: Assignment = field(default_factory=Assignment)


class Params(BaseModel):
    """A check kind's parameters, from its rubric entry; a kind without parameters uses this one."""

    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)


P = TypeVar("P", bound=Params)


def _no_variables(params: Any, assignment: Assignment) -> Iterable[str]:
    return ()


@dataclass(frozen=True, slots=True)
class CheckKind(Generic[P]):
    name: str  # "section.what", e.g. "model.layer"
    params: type[P]
    run: Callable[[Facts, P, Context], Verdict]
    # the namespace names the check reads, beside the assignment's roles: the probe must record them
    variables: Callable[[P, Assignment], Iterable[str]] = _no_variables

    @property
    def summary(self) -> str:
        return (self.run.__doc__ or "").strip().splitlines()[0] if self.run.__doc__ else ""


KINDS: dict[str, CheckKind[Any]] = {}
Integrity = Callable[[Facts, Context], list[str]]
INTEGRITY: dict[str, Integrity] = {}


def check_kind(
    name: str,
    params: type[P] = Params,  # type: ignore[assignment]
    variables: Callable[[P, Assignment], Iterable[str]] = _no_variables,
) -> Callable[[Callable[[Facts, P, Context], Verdict]], Callable[[Facts, P, Context], Verdict]]:
    """Registers a check kind under `name`; the function's docstring's first line documents it."""

    def register(run: Callable[[Facts, P, Context], Verdict]) -> Callable[[Facts, P, Context], Verdict]:
        existing = KINDS.get(name)
        if existing is not None and existing.run.__module__ != run.__module__:
            raise ValueError(f"check kind {name!r} is already defined by {existing.run.__module__}")
        KINDS[name] = CheckKind(name, params, run, variables)
        return run

    return register


def integrity_kind(name: str) -> Callable[[Integrity], Integrity]:
    """Registers evidence of a faked result; a section lists the kinds whose evidence zeroes it."""

    def register(find: Integrity) -> Integrity:
        INTEGRITY[name] = find
        return find

    return register


def clean(text: str) -> str:
    """Text from a kernel (an error message, a title) without terminal control codes."""
    return _CONTROL.sub("", text)


def ok(message: str) -> Verdict:
    return Verdict(True, clean(message))


def fail(message: str, fraction: float | None = None) -> Verdict:
    return Verdict(False, clean(message), fraction)


def cell_trouble(facts: Facts, *names: str) -> str:
    """' Likely cause: ...' naming the first cell that mentions one of `names` and did not finish cleanly."""
    for cell in facts.execution.cells:
        if names and not any(name in cell.source for name in names):
            continue
        if cell.status == "error":
            first_line = cell.error_value.splitlines()[0] if cell.error_value else ""
            return f" Likely cause: cell {cell.index} raised {cell.error_name}: {first_line}".rstrip()
        if cell.status in ("timeout", "kernel_died"):
            what = "ran out of time" if cell.status == "timeout" else "crashed the kernel"
            return f" Likely cause: cell {cell.index} {what}."
        if cell.status == "not_run":
            return f" Likely cause: cell {cell.index} never ran (an earlier cell stopped the notebook)."
    if names and not any(any(name in c.source for name in names) for c in facts.execution.cells):
        return f" No cell contains {' or '.join(f'`{n}`' for n in names)}: is that part of the notebook missing?"
    return ""


def shape_text(shape: list[int] | list[int | None] | None) -> str:
    if shape is None:
        return "none"
    return "(" + ", ".join("None" if n is None else str(n) for n in shape) + ("," if len(shape) == 1 else "") + ")"


def saved_compile(facts: Facts) -> CompiledFacts | None:
    """The saved model's compile config as the fresh process read it: where there is one, it decides what the
    loss, optimizer and metrics are (the kernel's own record is the fallback)."""
    reeval = facts.reevaluation
    return reeval.compiled if reeval.ok else None


def disguised(metric: MetricFacts) -> bool:
    """Whether a metric's display name claims another metric than the one it computes (a top-k accuracy named
    "categorical_accuracy"). Keras itself names the accuracy it picks for "accuracy" after that string."""
    claimed = metric.name_identity
    if claimed is None or claimed == metric.identity:
        return False
    return not (claimed == "accuracy" and metric.identity in ACCURACY_KINDS)
