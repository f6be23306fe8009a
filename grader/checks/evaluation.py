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
    unverified,
)
from grader.checks.found import evaluation_on_test
from grader.facts import EvaluateCall, Facts
from grader.keras_facts import Value

_NUMBER = re.compile(r"-?\d+\.\d+(?:[eE][-+]?\d+)?")
_PERCENT = re.compile(r"(\d+(?:\.\d+)?)\s*%")
# Code words of the cells that evaluate.
_EVALUATE = "evaluate"
# A claimed accuracy against the grader's own count, where evaluate's results cannot be recomputed: a metric of
# the notebook's own may average per batch, which moves it by a few images in a thousand.
_ACCURACY_TOLERANCE = 5e-3
# A score stored by hand against the results evaluate returned: rounded to two decimals is still theirs.
_ROUNDED = 5.1e-3


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
    """The test score is what the saved model scores on the provisioned test set, by the grader's own evaluate."""
    call, reeval = evaluation_on_test(facts, ctx.assignment), facts.reevaluation
    value = score_on_test(facts, ctx)
    if call is None or value is None:
        return missing(facts, "No [loss, accuracy] test score to compare", _EVALUATE)
    if (not_verified := unverified(facts)) is not None:
        return not_verified
    again = reeval.test_result
    if again is None:  # the compiled loss or metrics are the notebook's own code: the accuracy alone is checkable
        return _accuracy_matches(facts, value, reeval.message)
    if _agrees(value, again):
        return ok(f"The grader's evaluate of the saved model on the test set agrees: [{again[0]:.4f}, {again[1]:.4f}].")
    actual = f"on the test set the saved model scores {[round(v, 4) for v in again[:2]]}"
    if call.weights and reeval.weights_digest and call.weights != reeval.weights_digest:
        return fail(
            f"The test score {value} is from a model whose weights differ from the trained model's (another model, "
            f"or trained further after evaluate); {actual}."
        )
    if not _on_test_set(call, facts):
        return fail(f"The test score {value} is not on the test set: {_not_test_set(call, facts, ctx)}; {actual}.")
    return fail(f"The test score is {value}, but {actual}.")


def _accuracy_matches(facts: Facts, value: list[float], why: str) -> Verdict:
    """The claimed accuracy against the grader's own count, when evaluate's results cannot be recomputed."""
    measured = _measured_accuracy(facts)
    if measured is None:
        return fail(f"Not verified: {why or 'the model could not be re-evaluated'}.")
    if abs(value[1] - measured) <= _ACCURACY_TOLERANCE:
        return ok(f"The test accuracy {value[1]:.4f} agrees with the grader's own count ({measured:.4f}); {why}.")
    return fail(f"The test accuracy is {value[1]:.4f}, but the grader counts {measured:.4f} on the test set ({why}).")


def _on_test_set(call: EvaluateCall, facts: Facts) -> bool:
    """Whether evaluate was given the provisioned test images (as the grader recognises them, or as the saved
    arrays showed them to the re-evaluation) and the provisioned test labels, in any form."""
    images = call.x.images.startswith("test_") or (
        call.x.n_samples == facts.dataset.n_test and facts.reevaluation.student_data_accuracy is not None
    )
    return images and call.y.labels.startswith("test_")


def _not_test_set(call: EvaluateCall, facts: Facts, ctx: Context) -> str:
    """What evaluate was given instead of the test set."""
    x_name = f"`{call.x.names[0]}`" if call.x.names else ctx.assignment.name("test_images")
    y_name = f"`{call.y.names[0]}`" if call.y.names else ctx.assignment.name("test_labels")
    n_test = facts.dataset.n_test
    if call.x.n_samples is not None and call.x.n_samples != n_test:
        return f"evaluate was given {call.x.n_samples:,} images ({x_name}), not the {n_test:,} test images"
    if not call.y.labels.startswith("test_"):
        return f"the labels evaluate was given ({y_name}) are not the test labels"
    return f"the images evaluate was given ({x_name}) are not the test images"


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
    model on the very data and weights it was computed with, or read from a metric that computes something
    else than its name says. A difference an honest notebook could cause (another model, weights trained
    further, other data, a loss or metric the grader cannot run) is no evidence: it costs the score checks."""
    k, name = facts.kernel, ctx.assignment.name("score")
    evidence = []
    if k.integrity.hooks_intact.get("evaluate") is False or "evaluate" in k.integrity.instance_overrides:
        evidence.append("`evaluate` was replaced by the notebook's own code (monkeypatched)")
    stored = k.variable(name)
    typed = _numbers(stored.value)
    if typed is not None and not stored.from_evaluate and not _reproduced(typed, facts):
        evidence.append(f"`{name}` = {typed} was not returned by any call to model.evaluate (typed in?)")
    contradiction = _contradicted(evaluation_on_test(facts, ctx.assignment), facts)
    if contradiction:
        evidence.append(contradiction)
    claimed = typed if typed is not None and not stored.from_evaluate else score_on_test(facts, ctx)
    saved = saved_compile(facts)
    if claimed is not None and saved and saved.metrics and disguised(saved.metrics[0]):
        first, measured = saved.metrics[0], _measured_accuracy(facts)
        actual = f"; the model's accuracy on the test images is {measured:.4f}" if measured is not None else ""
        evidence.append(
            f"the test accuracy {claimed[1]:.4f} is from a metric named {first.name!r} that computes "
            f"{first.identity}{actual}"
        )
    return evidence


def _reproduced(typed: list[float], facts: Facts) -> bool:
    """Whether a score stored by hand is one that evaluate returned (rounded) or that the grader's own evaluate
    of the saved model gives."""
    results = [c.result for c in facts.kernel.evaluate_calls if c.result is not None and len(c.result) >= 2]
    if any(all(abs(a - b) <= _ROUNDED for a, b in zip(typed[:2], r[:2], strict=False)) for r in results):
        return True
    again = (facts.reevaluation.student_data_result, facts.reevaluation.test_result)
    return any(result is not None and _agrees(typed, result) for result in again)


def _contradicted(call: EvaluateCall | None, facts: Facts) -> str | None:
    """The test score against the grader's evaluate of the saved model on the same arrays, when that repeats it."""
    again = facts.reevaluation.student_data_result
    if call is None or call.result is None or not again or not _same_run(call, facts) or _agrees(call.result, again):
        return None
    return (
        f"the test score {[round(v, 4) for v in call.result[:2]]} but re-evaluating the saved model gives "
        f"{[round(v, 4) for v in again[:2]]} on the same data"
    )


def _same_run(call: EvaluateCall, facts: Facts) -> bool:
    """Whether the re-evaluation on the student's arrays repeats this evaluate exactly: the provisioned test
    images and labels (which the kernel saved for it), with the saved model's weights."""
    reeval = facts.reevaluation
    same_weights = not call.weights or not reeval.weights_digest or call.weights == reeval.weights_digest
    return same_weights and call.x.images.startswith("test_") and call.y.labels.startswith("test_")
