"""Checks of the evaluation on the test set: the score evaluate returned there (however the notebook stored it),
its agreement with the grader's own re-evaluation, the accuracy calibrated on the reference solution, and the
printed result; and the evidence that the score was faked."""

from __future__ import annotations

import re

from grader.checks.base import (
    Context,
    Params,
    Verdict,
    check_kind,
    disguised,
    fail,
    integrity_kind,
    missing,
    ok,
    saved_compile,
)
from grader.checks.found import evaluation_on_test
from grader.facts import Facts, Value

_NUMBER = re.compile(r"-?\d+\.\d+(?:[eE][-+]?\d+)?")
_PERCENT = re.compile(r"(\d+(?:\.\d+)?)\s*%")
# Code words of the cells that evaluate.
_EVALUATE = "evaluate"


def _agrees(score: list[float], again: list[float]) -> bool:
    """Whether a [loss, accuracy] pair matches the grader's re-evaluation, up to float32 and batching noise."""
    return len(again) >= 2 and all(
        abs(a - b) <= max(2e-3, 2e-3 * abs(b)) for a, b in zip(score[:2], again[:2], strict=True)
    )


def score_on_test(facts: Facts, ctx: Context) -> list[float] | None:
    """[loss, accuracy] as the notebook's evaluate on the test data returned them."""
    call = evaluation_on_test(facts, ctx.assignment)
    return call.result[:2] if call is not None and call.result is not None and len(call.result) >= 2 else None


def _test_call(ctx: Context) -> str:
    names = ctx.assignment.name("test_images"), ctx.assignment.name("test_labels")
    return f"model.evaluate({', '.join(names)})"


def _measured_accuracy(facts: Facts) -> float | None:
    """Counted by the grader from the saved model's predictions and the provisioned labels, never read from a
    compiled metric: on the student's test images as they prepared them, when those are the provisioned ones."""
    reeval = facts.reevaluation
    return reeval.student_data_accuracy if reeval.student_data_accuracy is not None else reeval.accuracy


@check_kind("evaluation.score")
def score(facts: Facts, params: Params, ctx: Context) -> Verdict:
    """evaluate was called on the test images and labels and returned [loss, accuracy]."""
    call, name = evaluation_on_test(facts, ctx.assignment), ctx.assignment.name("score")
    if call is not None and call.result is not None:
        if len(call.result) < 2:
            return fail(f"{_test_call(ctx)} returned {call.result}, not [loss, accuracy]: compile with a metric.")
        return ok(f"{_test_call(ctx)} = [{call.result[0]:.4f}, {call.result[1]:.4f}].")
    if any(c.result is not None for c in facts.kernel.evaluate_calls):
        return fail(f"model.evaluate was not called on the test data: call {_test_call(ctx)}.")
    if "score" not in ctx.assignment.variables:  # the assignment asks for no stored score: do not invent one
        return missing(facts, f"{_test_call(ctx)} was never called", _EVALUATE)
    if facts.kernel.variable(name).present:
        return missing(facts, f"`{name}` was not returned by model.evaluate", _EVALUATE)
    return missing(facts, f"No `{name}` variable: store {name} = {_test_call(ctx)}", name, _EVALUATE)


@check_kind("evaluation.score_matches")
def score_matches(facts: Facts, params: Params, ctx: Context) -> Verdict:
    """The test score agrees with the grader's own re-evaluation of the saved model."""
    value, reeval = score_on_test(facts, ctx), facts.reevaluation
    if value is None:
        return missing(facts, "No [loss, accuracy] test score to compare", _EVALUATE)
    if not reeval.ok or reeval.student_data_result is None:
        return fail(f"The grader could not re-evaluate the model: {reeval.message or 'no saved model'}.")
    again = reeval.student_data_result[:2]
    if _agrees(value, again):
        return ok(f"The grader's re-evaluation agrees: [{again[0]:.4f}, {again[1]:.4f}].")
    return fail(
        f"The test score is {value}, but the trained model actually scores {[round(v, 4) for v in again]} "
        "on the same data."
    )


@check_kind("evaluation.accuracy")
def accuracy(facts: Facts, params: Params, ctx: Context) -> Verdict:
    """The test accuracy, measured by the grader, reaches the threshold calibrated on the reference solution."""
    reeval = facts.reevaluation
    if not reeval.ok:
        return missing(facts, f"No trained model to measure: {reeval.message}", "fit", _EVALUATE)
    measured = _measured_accuracy(facts)
    if measured is None or ctx.accuracy_threshold is None:
        return fail(f"The model's accuracy could not be measured: {reeval.message or 'unknown'}.")
    ref = (
        f" (the reference solution reaches {ctx.reference_accuracy:.4f} on the same data)"
        if ctx.reference_accuracy
        else ""
    )
    if measured >= ctx.accuracy_threshold:
        return ok(f"Test accuracy {measured:.4f} >= {ctx.accuracy_threshold:.4f}{ref}.")
    return fail(f"Test accuracy {measured:.4f} is below {ctx.accuracy_threshold:.4f}{ref}; check the earlier sections.")


@check_kind("evaluation.printed")
def printed(facts: Facts, params: Params, ctx: Context) -> Verdict:
    """The output shows the test loss and accuracy that evaluate returned."""
    value = score_on_test(facts, ctx)
    if value is None:
        return missing(facts, "No test score to print", _EVALUATE)
    numbers = [float(x) for x in _NUMBER.findall(facts.execution.stdout.rsplit("Epoch", 1)[-1])]
    # The accuracy may be printed as a percentage ("92.51%").
    percents = [float(x) / 100 for x in _PERCENT.findall(facts.execution.stdout.rsplit("Epoch", 1)[-1])]
    absent = [
        what
        for what, v in zip(("loss", "accuracy"), value, strict=True)
        if not any(abs(n - v) <= 5e-3 for n in numbers)
        and not (what == "accuracy" and any(abs(p - v) <= 5e-3 for p in percents))
    ]
    if absent:
        return fail("The test " + " and ".join(absent) + " were not printed (print them from what evaluate returned).")
    return ok("Printed the test loss and accuracy.")


def _numbers(value: Value) -> list[float] | None:
    """A stored score: two or more numbers."""
    if not isinstance(value, list) or len(value) < 2:
        return None
    numbers = [v for v in value if isinstance(v, int | float) and not isinstance(v, bool)]
    return numbers if len(numbers) == len(value) else None


@integrity_kind("evaluation")
def faked_score(facts: Facts, ctx: Context) -> list[str]:
    """Evidence that the score was faked: typed in, produced by a replaced evaluate, contradicted by the saved
    model, or read from a metric that computes something else than its name says."""
    k, name = facts.kernel, ctx.assignment.name("score")
    evidence = []
    if k.integrity.hooks_intact.get("evaluate") is False or "evaluate" in k.integrity.instance_overrides:
        evidence.append("`evaluate` was replaced by the notebook's own code (monkeypatched)")
    stored = k.variable(name)
    typed = _numbers(stored.value)
    again = facts.reevaluation.student_data_result
    # A score some evaluate returned is honest, whatever data it was on (that costs the score checks): only the
    # test evaluate's result, or a score no evaluate returned, is held against the saved model. One that no
    # evaluate returned but the saved model reproduces (evaluate's result rounded) is no evidence.
    hand_made = typed is not None and not stored.from_evaluate
    if hand_made and typed is not None and not (again and _agrees(typed, again)):
        evidence.append(f"`{name}` = {typed} was not returned by any call to model.evaluate (typed in?)")
    claimed = typed if hand_made else score_on_test(facts, ctx)
    what = f"`{name}` = {typed}" if hand_made else f"the test score {claimed}"
    if claimed is not None and again and not _agrees(claimed, again):
        evidence.append(f"{what} but re-evaluating the saved model gives {[round(v, 4) for v in again[:2]]}")
    saved = saved_compile(facts)
    if claimed is not None and saved and saved.metrics and disguised(saved.metrics[0]):
        first, measured = saved.metrics[0], _measured_accuracy(facts)
        actual = f"; the model's accuracy on the test images is {measured:.4f}" if measured is not None else ""
        evidence.append(
            f"the test accuracy {claimed[1]:.4f} is from a metric named {first.name!r} that computes "
            f"{first.identity}{actual}"
        )
    return evidence
