"""Evaluate: `score` comes from model.evaluate(x_test, y_test), matches the grader's own re-evaluation,
reaches the accuracy calibrated on the reference solution, and was printed."""

from __future__ import annotations

import re

from grader.checks import Check, Context, Verdict, cell_trouble, disguised, fail, ok, saved_compile
from grader.facts import Facts

_NUMBER = re.compile(r"-?\d+\.\d+(?:[eE][-+]?\d+)?")


def _agrees(score: list[float], again: list[float]) -> bool:
    """Whether a [loss, accuracy] pair matches the grader's re-evaluation, up to float32 and batching noise."""
    return len(again) >= 2 and all(
        abs(a - b) <= max(2e-3, 2e-3 * abs(b)) for a, b in zip(score, again[:2], strict=True)
    )


def _score(facts: Facts) -> list[float] | None:
    s = facts.kernel.score
    return s.value if s.present and s.value is not None and len(s.value) == 2 else None


def _measured_accuracy(facts: Facts) -> float | None:
    """Counted by the grader from the saved model's predictions and the provisioned labels, never read from a
    compiled metric: on the student's test images as they prepared them, when those are the provisioned ones."""
    reeval = facts.reevaluation
    return reeval.student_data_accuracy if reeval.student_data_accuracy is not None else reeval.accuracy


def score(facts: Facts, ctx: Context) -> Verdict:
    k = facts.kernel
    if not k.score.present:
        return fail(
            "No `score` variable: store score = model.evaluate(x_test, y_test)."
            + cell_trouble(facts, "score", "evaluate")
        )
    value = _score(facts)
    if value is None:
        return fail(f"`score` is a {k.score.type_name}, expected [loss, accuracy] as returned by model.evaluate.")
    if not k.score.from_evaluate:
        return fail("`score` was not returned by model.evaluate." + cell_trouble(facts, "evaluate"))
    on_test = any(
        c.result is not None and c.x_fingerprint == k.x_test_fingerprint and c.y_fingerprint == k.y_test_fingerprint
        for c in k.evaluate_calls
    )
    if not on_test:
        return fail("model.evaluate was not called on (x_test, y_test).")
    return ok(f"score = model.evaluate(x_test, y_test) = [{value[0]:.4f}, {value[1]:.4f}].")


def matches(facts: Facts, ctx: Context) -> Verdict:
    value = _score(facts)
    reeval = facts.reevaluation
    if value is None:
        return fail("No [loss, accuracy] score to compare.")
    if not reeval.ok or reeval.student_data_result is None:
        return fail(f"The grader could not re-evaluate the model: {reeval.message or 'no saved model'}.")
    again = reeval.student_data_result[:2]
    if _agrees(value, again):
        return ok(f"The grader's re-evaluation agrees: [{again[0]:.4f}, {again[1]:.4f}].")
    return fail(
        f"`score` is {value}, but the trained model actually scores {[round(v, 4) for v in again]} on the same data."
    )


def accuracy(facts: Facts, ctx: Context) -> Verdict:
    reeval = facts.reevaluation
    if not reeval.ok:
        return fail(f"No trained model to measure: {reeval.message}." + cell_trouble(facts, "fit", "evaluate"))
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


def printed(facts: Facts, ctx: Context) -> Verdict:
    value = _score(facts)
    if value is None:
        return fail("No score to print.")
    numbers = [float(x) for x in _NUMBER.findall(facts.execution.stdout.rsplit("Epoch", 1)[-1])]
    missing = [
        name
        for name, v in zip(("loss", "accuracy"), value, strict=True)
        if not any(abs(n - v) <= 5e-3 for n in numbers)
    ]
    if missing:
        return fail("The test " + " and ".join(missing) + " were not printed (print score[0] and score[1]).")
    return ok("Printed the test loss and accuracy.")


def integrity(facts: Facts, ctx: Context) -> list[str]:
    """Evidence that the score was faked: typed in, or produced by a replaced evaluate."""
    k = facts.kernel
    evidence = []
    if k.integrity.hooks_intact.get("evaluate") is False or "evaluate" in k.integrity.instance_overrides:
        evidence.append("`evaluate` was replaced by the notebook's own code (monkeypatched)")
    value = _score(facts)
    if value is not None and not k.score.from_evaluate:
        evidence.append(f"`score` = {value} was not returned by any call to model.evaluate (typed in?)")
    again = facts.reevaluation.student_data_result
    if value is not None and again and len(again) >= 2 and not _agrees(value, again):
        evidence.append(f"`score` = {value} but re-evaluating the saved model gives {[round(v, 4) for v in again[:2]]}")
    saved = saved_compile(facts)
    if value is not None and saved and saved.metrics and disguised(saved.metrics[0]):
        first, measured = saved.metrics[0], _measured_accuracy(facts)
        actual = f"; the model's accuracy on the test images is {measured:.4f}" if measured is not None else ""
        evidence.append(
            f"`score`[1] = {value[1]:.4f} is from a metric named {first.name!r} that computes {first.identity}{actual}"
        )
    return evidence


CHECKS: dict[str, Check] = {"score": score, "matches": matches, "accuracy": accuracy, "printed": printed}
