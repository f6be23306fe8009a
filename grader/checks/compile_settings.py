"""Checks of the compile settings: the loss, the optimizer and the metrics, each by what it is, not what it is
named (kinds `training.loss`, `training.optimizer`, `training.metrics`)."""

from __future__ import annotations

from typing import ClassVar

from grader.assignment import Assignment, KerasObjectSpec
from grader.checks.base import (
    Context,
    Params,
    Verdict,
    cell_trouble,
    check_kind,
    fail,
    ok,
    same_name,
    same_value,
    saved_compile,
    setting_problem,
)
from grader.facts import CompileCall, Facts, FitCall
from grader.keras_facts import KerasObject
from grader.kernel.keras_spelling import ACCURACY_KINDS, ACCURACY_STRINGS, name_key


def _compile(facts: Facts) -> CompileCall | None:
    calls = facts.kernel.compile_calls
    chosen = [c for c in calls if c.error is None] or calls
    return chosen[-1] if chosen else None


def _named(found: KerasObject | None, name: str | None) -> KerasObject | None:
    """The object as recorded, else (facts without one) its canonical name alone."""
    return found if found is not None else KerasObject(name) if name else None


def _loss(facts: Facts, call: CompileCall) -> KerasObject | None:
    saved = saved_compile(facts)
    if saved:
        return _named(saved.loss_object, saved.loss)
    return _named(call.loss_object, facts.kernel.model.loss or call.loss)


def _optimizer(facts: Facts, call: CompileCall) -> tuple[KerasObject | None, float | None]:
    saved, model = saved_compile(facts), facts.kernel.model
    if saved:
        return _named(saved.optimizer_object, saved.optimizer), saved.learning_rate
    rate = model.learning_rate if model.learning_rate is not None else call.learning_rate
    return _named(call.optimizer_object, model.optimizer or call.optimizer), rate


def _metrics(facts: Facts, call: CompileCall) -> list[KerasObject]:
    saved = saved_compile(facts)
    if saved:
        return saved.metric_objects or [KerasObject(m.identity) for m in saved.metrics]
    return call.metric_objects or [KerasObject(m) for m in call.metrics]


def _differences(found: KerasObject, expected: KerasObjectSpec) -> list[str]:
    """The settings the rubric names that the found object has otherwise ("has from_logits False, expected True")."""
    problems = (setting_problem(key, found.settings, value) for key, value in expected.arguments.items())
    return [problem for problem in problems if problem]


def _is(found: KerasObject | None, expected: KerasObjectSpec) -> bool:
    """Whether a found loss, optimizer or metric is the expected class or function with the named settings."""
    return found is not None and same_name(found.name, expected.class_name) and not _differences(found, expected)


def _mismatch(what: str, found: KerasObject | None, expected: KerasObjectSpec) -> str:
    """'The loss is mean_squared_error, expected ...' or 'The loss sparse_categorical_crossentropy has ...'."""
    if found is not None and same_name(found.name, expected.class_name):
        return f"The {what} {found.name} " + "; it ".join(_differences(found, expected))
    return f"The {what} is {found.name if found else 'none'}, expected {expected.describe()}"


def _no_compile(facts: Facts) -> Verdict:
    cause = cell_trouble(facts, "compile")
    if "'lr'" in cause:
        cause += " In Keras 3 the argument is `learning_rate=`, not `lr=`."
    return fail("model.compile(...) was never called successfully." + cause)


class _CompileSetting(Params):
    setting: ClassVar[str]  # the field of the rubric's `compile:` the check compares

    def check_assignment(self, assignment: Assignment) -> str | None:
        if getattr(assignment.compile, self.setting):
            return None
        return f"the rubric declares no `{self.setting}:` under `compile:` to compare with"


class LossParams(_CompileSetting):
    setting = "loss"


@check_kind("training.loss", LossParams)
def loss(facts: Facts, params: LossParams, ctx: Context) -> Verdict:
    """The model is compiled with the declared loss."""
    call = _compile(facts)
    if call is None:
        return _no_compile(facts)
    expected, used = ctx.assignment.compile.loss, _loss(facts, call)
    if expected is not None and not _is(used, expected):
        return fail(f"{_mismatch('loss', used, expected)}{_labels_hint(used, expected)}.")
    trained = facts.kernel.training_fit()
    trained_with = class_of(trained.loss) if trained and trained.loss else None
    if expected is not None and trained and trained_with and not same_name(trained_with, expected.class_name):
        compiled = used.name if used else expected.class_name
        return fail(f"The model was trained with the loss {trained.loss!r}; {compiled!r} was compiled only afterwards.")
    return ok(f"Loss: {expected.describe() if expected else used.name if used else 'none'}.")


def _labels_hint(used: KerasObject | None, expected: KerasObjectSpec) -> str:
    """Why a cross-entropy of the other kind is wrong: the labels it takes are of the other form."""
    found, wanted = name_key(used.name if used else ""), name_key(expected.class_name)
    if "sparsecategorical" in found and "sparse" not in wanted:
        return " (sparse cross-entropy is for integer labels; the labels should be one-hot)"
    if "sparse" in wanted and found.startswith("categorical"):
        return " (categorical cross-entropy is for one-hot labels; the labels should stay integer class ids)"
    return ""


class OptimizerParams(_CompileSetting):
    setting = "optimizer"


@check_kind("training.optimizer", OptimizerParams)
def optimizer(facts: Facts, params: OptimizerParams, ctx: Context) -> Verdict:
    """The model is compiled with the declared optimizer (and learning rate, when the rubric gives one)."""
    call = _compile(facts)
    if call is None:
        return _no_compile(facts)
    (found, rate), expected = _optimizer(facts, call), ctx.assignment.compile.optimizer
    expected_rate = ctx.assignment.compile.learning_rate
    if expected is None:
        return ok(f"Optimizer: {found.name if found else 'none'}.")
    want = expected.describe() + (f" with learning_rate={expected_rate:g}" if expected_rate is not None else "")
    if not _is(found, expected):
        return fail(f"{_mismatch('optimizer', found, expected)}.")
    if expected_rate is not None and not same_value(rate, expected_rate):
        return fail(f"{expected.class_name}'s learning rate is {rate}, expected {expected_rate:g}.")
    if problem := _trained_otherwise(facts.kernel.training_fit(), expected.class_name, expected_rate):
        return fail(problem)
    return ok(f"Optimizer: {want}.")


def class_of(identity: str) -> str:
    """The class or function of a recorded identity: "sparse_categorical_crossentropy(from_logits=True)" is a
    sparse_categorical_crossentropy (the compiled settings are the compile checks' to judge)."""
    return identity.partition("(")[0]


def _trained_otherwise(fit: FitCall | None, expected: str, expected_rate: float | None) -> str:
    """Why the optimizer in effect while the judged fit trained was not the expected one ("" when it was, or when
    that was not recorded): a compile or a learning rate changed after training does not count."""
    if fit is None or fit.optimizer is None:
        return ""
    if not same_name(class_of(fit.optimizer), expected):
        return f"The model was trained with {fit.optimizer}; {expected} was set only after training."
    rates = [rate for rate in fit.learning_rates if expected_rate is not None and not same_value(rate, expected_rate)]
    if rates:
        return f"During training the learning rate was {rates[0]:g}, expected {expected_rate:g}."
    return ""


def _accuracy_for(loss: str | None) -> str:
    """The accuracy Keras computes for the metric "accuracy" with this loss."""
    key = name_key(loss or "")
    for kind in ("sparse_categorical", "binary", "categorical"):
        if name_key(kind) in key:
            return f"{kind}_accuracy"
    return "accuracy"


def _same_metric(found: KerasObject, expected: KerasObjectSpec, loss: KerasObject | None) -> bool:
    """Whether a compiled metric is the expected one: "accuracy" stands for the accuracy Keras picks for the
    loss, and an expected "accuracy" accepts any accuracy."""
    if _is(found, expected):
        return True
    if expected.class_name in ACCURACY_STRINGS:
        return found.name in ACCURACY_KINDS or found.name in ACCURACY_STRINGS
    picked = _accuracy_for(loss.name if loss else None)
    return found.name in ACCURACY_STRINGS and same_name(picked, expected.class_name)


class MetricsParams(_CompileSetting):
    setting = "metrics"


@check_kind("training.metrics", MetricsParams)
def metrics(facts: Facts, params: MetricsParams, ctx: Context) -> Verdict:
    """The model tracks every declared metric (by what it computes, not what it is called)."""
    call = _compile(facts)
    if call is None:
        return _no_compile(facts)
    found, expected, used_loss = _metrics(facts, call), ctx.assignment.compile.metrics, _loss(facts, call)
    tracked = [m for m in expected if any(_same_metric(f, m, used_loss) for f in found)]
    wanted = ", ".join(m.describe() for m in expected)
    if len(tracked) == len(expected):
        return ok(f"Tracks {wanted}.")
    return fail(
        f"The metrics are {sorted(f.name for f in found) or 'none'}; expected {wanted}.",
        fraction=len(tracked) / len(expected) if tracked else None,
    )
