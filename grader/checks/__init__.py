"""One module per rubric section; each check is a pure function of the facts and the scoring context.

A check returns a `Verdict`: whether it passed, the fraction of its points earned, and a message a
beginner can act on (what was expected, what was found, the likely cause). A section may also name
integrity evidence: a faked result earns zero for the whole section it fakes.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from grader.facts import CompiledFacts, Facts, MetricFacts

# What Keras may name after "accuracy": the metric it picks for that string, from the labels.
ACCURACY_KINDS = {"accuracy", "categorical_accuracy", "sparse_categorical_accuracy", "binary_accuracy"}


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
    """What scoring needs beside the facts: thresholds calibrated on the reference run."""

    accuracy_threshold: float | None
    reference_accuracy: float | None


Check = Callable[[Facts, Context], Verdict]
Integrity = Callable[[Facts, Context], list[str]]


def ok(message: str) -> Verdict:
    return Verdict(True, message)


def fail(message: str, fraction: float | None = None) -> Verdict:
    return Verdict(False, message, fraction)


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
