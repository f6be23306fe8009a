"""What every check kind is made of: the verdict it returns, the context it reads, and the registry.

A check kind is a pure function of the facts, its parameters (a pydantic model validated from the rubric
entry) and the scoring context (the rubric's assignment and the thresholds calibrated on the reference). It
returns a `Verdict`: whether it passed, the fraction of its points earned, and a message a beginner can act
on. An integrity kind returns evidence that a result was faked; the sections that name it then earn zero.
Built-in kinds live in the modules of this package, grouped by what they look at; an instructor's file can
add more with the same decorator.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from pydantic import BaseModel, ConfigDict

from grader.assignment import Assignment
from grader.facts import Facts
from grader.kernel.keras_spelling import ACCURACY_KINDS, name_key
from grader.reevaluation_facts import CompiledFacts, MetricFacts
from grader.terminal_text import strip_control


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

    def check_assignment(self, assignment: Assignment) -> str | None:
        """Why the check cannot run on `assignment` (it reads a layer or setting the rubric does not declare),
        or None; the rubric loader turns the reason into an error naming the check's line."""
        return None


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


Review = Callable[[Facts, Context], list[str]]
REVIEW: dict[str, Review] = {}


def review_kind(name: str) -> Callable[[Review], Review]:
    """Registers a finding worth a person's look that changes no points (a result implausible but not proven
    faked); every registered kind runs on every grade."""

    def register(find: Review) -> Review:
        REVIEW[name] = find
        return find

    return register


def clean(text: str) -> str:
    """Text from a kernel (an error message, a title) without terminal control codes."""
    return strip_control(text)


def ok(message: str) -> Verdict:
    return Verdict(True, clean(message))


def fail(message: str, fraction: float | None = None) -> Verdict:
    return Verdict(False, clean(message), fraction)


@dataclass(frozen=True, slots=True)
class Problem:
    """One thing a check found wrong."""

    text: str  # a clause without a final period: "`x_train` is not defined"
    # Something missing (undefined, never called, a figure cut short): a cell that did not finish can explain
    # it. A value that is present but wrong cannot, so no likely cause is given for it.
    absent: bool = False


def failure(facts: Facts, problems: Sequence[Problem], *names: str, fraction: float | None = None) -> Verdict:
    """A failure listing `problems`, with the likely cause (a cell mentioning one of `names` that did not finish
    cleanly) only when one of them is something missing."""
    cause = cell_trouble(facts, *names) if any(problem.absent for problem in problems) else ""
    return fail("; ".join(problem.text for problem in problems) + "." + cause, fraction)


def missing(facts: Facts, text: str, *names: str) -> Verdict:
    """A failure because something is missing (`text` without a final period), with its likely cause."""
    return failure(facts, [Problem(text, absent=True)], *names)


def cell_trouble(facts: Facts, *names: str) -> str:
    """' Likely cause: ...' naming the first cell that mentions one of `names` and did not finish cleanly.

    Only for something missing: `failure` and `missing` call it, never for a present but wrong value."""
    for cell in facts.execution.cells:
        if names and not any(name in cell.source for name in names):
            continue
        if cell.status == "error":
            first_line = next(iter(clean(cell.error_value).splitlines()), "")
            return f" Likely cause: cell {cell.index} raised {clean(cell.error_name)}: {first_line}".rstrip(" :")
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


def value_text(value: object) -> str:
    """A rubric or notebook value as Python would show it, a list as a tuple: (28, 28, 1), 'relu', 0.02."""
    if isinstance(value, list):
        return "(" + ", ".join(value_text(v) for v in value) + ("," if len(value) == 1 else "") + ")"
    return repr(value)


def same_value(found: object, expected: object) -> bool:
    """Whether a recorded value equals an expected one: numbers up to float32 rounding (a learning rate of
    0.02 is stored as 0.0199999995), a tuple as the list it was recorded as, a bool never as a number."""
    if isinstance(expected, list) or isinstance(found, list):
        return (
            isinstance(expected, list)
            and isinstance(found, list)
            and len(found) == len(expected)
            and all(same_value(f, e) for f, e in zip(found, expected, strict=True))
        )
    if isinstance(found, bool) or isinstance(expected, bool):
        return found is expected
    if isinstance(found, int | float) and isinstance(expected, int | float):
        return math.isclose(found, expected, rel_tol=1e-6, abs_tol=1e-12)
    return type(found) is type(expected) and found == expected


def shown(value: object) -> str:
    """A setting as a message shows it: a name as it is (relu), anything else as Python would (0.5, (3, 3))."""
    return value if isinstance(value, str) else value_text(value)


def _activation_text(value: object) -> str:
    return "no activation" if value in (None, "linear") else f"activation {value!r}"


def same_setting(key: str, found: object, expected: object) -> bool:
    """Settings compared as Keras reads them: a size `3` is (3, 3) for a 2D layer, names in any case, no
    activation (None) is Keras's default, the linear one."""
    if key == "activation" and (found is None or expected is None):
        return found in (None, "linear") and expected in (None, "linear")
    if isinstance(found, str) and isinstance(expected, str):
        return same_name(found, expected)
    if isinstance(found, list) != isinstance(expected, list):
        sizes, size = (found, expected) if isinstance(found, list) else (expected, found)
        return isinstance(sizes, list) and bool(sizes) and all(same_value(n, size) for n in sizes)
    return same_value(found, expected)


def setting_problem(key: str, settings: Mapping[str, object], expected: object) -> str | None:
    """What differs between a found object's setting and the expected one ("has 64 units, expected 128"), or
    None; `settings` are the found object's."""
    if key == "activation":
        found = settings.get(key)
        if same_setting(key, found, expected):
            return None
        return f"has {_activation_text(found)}, expected {_activation_text(expected)}"
    if key not in settings:
        return f"has no {key} setting, expected {shown(expected)}"
    found = settings[key]
    if same_setting(key, found, expected):
        return None
    if key in ("units", "filters"):  # settings that count something
        return f"has {shown(found)} {key}, expected {shown(expected)}"
    return f"has {key} {shown(found)}, expected {shown(expected)}"


def same_name(found: str | None, expected: str) -> bool:
    """Whether two spellings name the same Keras object: "CategoricalCrossentropy" is
    "categorical_crossentropy", "SGD" is "sgd"."""
    return found is not None and name_key(found) == name_key(expected)


_ORDINALS = ("first", "second", "third", "fourth", "fifth", "sixth", "seventh", "eighth", "ninth", "tenth")


def ordinal(position: int) -> str:
    """'first' for position 0, 'second' for 1, ... '11th' past ten."""
    if position < len(_ORDINALS):
        return _ORDINALS[position]
    n = position + 1
    suffix = "th" if 10 <= n % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(n % 10, "th")
    return f"{n}{suffix}"


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


def unverified(facts: Facts) -> Verdict | None:
    """A failure for a check that relies on the grader's re-evaluation of the saved model when there was none
    (no model, one that does not load, one that ran out of time or memory): what cannot be verified does not
    pass, and the message says why. None when the re-evaluation ran."""
    reeval = facts.reevaluation
    if reeval.ok:
        return None
    return fail(f"Not verified: the grader could not re-evaluate the saved model ({reeval.message or 'no result'}).")
