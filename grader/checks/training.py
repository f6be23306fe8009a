"""Checks of training: the compile settings (loss, optimizer, metrics), the arguments fit was called with, the
history it returned and whether the weights really changed; and the evidence that training was faked."""

from __future__ import annotations

import math
from typing import ClassVar

from pydantic import Field

from grader.assignment import Assignment, KerasObjectSpec
from grader.checks.base import (
    ACCURACY_KINDS,
    Context,
    Params,
    Verdict,
    cell_trouble,
    check_kind,
    disguised,
    fail,
    integrity_kind,
    missing,
    ok,
    review_kind,
    same_name,
    same_value,
    saved_compile,
    setting_problem,
    unverified,
    value_text,
)
from grader.facts import CompileCall, Facts, FitCall, KerasObject, ValidationRequest
from grader.keras_api import name_key

# What Keras calls the accuracy metric it picks from the loss.
_ACCURACY_ALIASES = ("accuracy", "acc")
# Arguments older Keras versions took, and what they are called now.
_RENAMED_FIT_ARGUMENTS = {"nb_epoch": "epochs"}
# A history's last validation results against the saved model's on the same split: float32 sums in other
# batches differ in the last digits, a single image in a few thousand moves accuracy by more than this.
_VALIDATION_TOLERANCE = 1e-3
# Every kernel starts from one random state, so the assignment's own settings reach about the reference's accuracy
# (identical notebooks differ by up to 0.025 on 12,000 images): a test accuracy half-way from it to 1.0, and at
# least this far above it, is worth a person's look.
_FAR_ABOVE = 0.04
# The share of the training set a fit must be given: the rest may be a validation set split off by hand.
_HAND_SPLIT = 0.8


def _compile(facts: Facts) -> CompileCall | None:
    calls = facts.kernel.compile_calls
    chosen = [c for c in calls if c.error is None] or calls
    return chosen[-1] if chosen else None


def _fit(facts: Facts) -> FitCall | None:
    """The last fit that trained, else the last fit called."""
    calls = facts.kernel.fit_calls
    return facts.kernel.training_fit() or (calls[-1] if calls else None)


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
    trained_with = _class_of(trained.loss) if trained and trained.loss else None
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


def _class_of(identity: str) -> str:
    """The class or function of a recorded identity: "sparse_categorical_crossentropy(from_logits=True)" is a
    sparse_categorical_crossentropy (the compiled settings are the compile checks' to judge)."""
    return identity.partition("(")[0]


def _trained_otherwise(fit: FitCall | None, expected: str, expected_rate: float | None) -> str:
    """Why the optimizer in effect while the judged fit trained was not the expected one ("" when it was, or when
    that was not recorded): a compile or a learning rate changed after training does not count."""
    if fit is None or fit.optimizer is None:
        return ""
    if not same_name(_class_of(fit.optimizer), expected):
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
    if expected.class_name in _ACCURACY_ALIASES:
        return found.name in ACCURACY_KINDS or found.name in _ACCURACY_ALIASES
    picked = _accuracy_for(loss.name if loss else None)
    return found.name in _ACCURACY_ALIASES and same_name(picked, expected.class_name)


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


class FitArguments(Params):
    arguments: list[str] | None = None  # the rubric's `fit:` settings to compare; None: all of them

    def check_assignment(self, assignment: Assignment) -> str | None:
        if not assignment.fit:
            return "the rubric declares no `fit:` settings to compare with"
        unknown = [name for name in self.arguments or () if name not in assignment.fit]
        return f"{', '.join(unknown)} not among the rubric's `fit:` settings" if unknown else None


@check_kind("training.fit_arguments", FitArguments)
def fit_arguments(facts: Facts, params: FitArguments, ctx: Context) -> Verdict:
    """fit was called with the declared arguments."""
    call = _fit(facts)
    if call is None:
        return missing(facts, "model.fit(...) was never called", "fit")
    problems = []
    if call.unknown_arguments:
        renames = [
            f"`{a}` (use `{_RENAMED_FIT_ARGUMENTS[a]}`)" if a in _RENAMED_FIT_ARGUMENTS else f"`{a}`"
            for a in call.unknown_arguments
        ]
        problems.append("fit() does not accept " + ", ".join(renames))
    declared = ctx.assignment.fit
    for name in params.arguments if params.arguments is not None else declared:
        used, expected = call.argument(name), declared[name]
        if name == "epochs" and (over_fits := _epochs_over_fits(facts, call)) is not None:
            total, parts = over_fits
            if not same_value(total, expected):
                problems.append(
                    f"training went on over fits in a row: {total} epochs in all ({parts}), expected {expected}"
                )
            continue
        if same_value(used, expected):
            continue
        if name in call.arguments:
            problems.append(f"{name} was {value_text(used)}, expected {value_text(expected)}")
        else:
            default = f" (Keras then uses {value_text(used)})" if used is not None else ""
            problems.append(f"{name} was not passed{default}, expected {value_text(expected)}")
    raised = call.error is not None and not _interrupted(call)
    if problems or raised:
        found = "In the fit call: " + "; ".join(problems) + "." if problems else ""
        error = (call.error or "").partition(":")[0]
        crash = f"The fit call raised {error}: a fit that failed earns no points." if raised else ""
        return fail(" ".join(filter(None, (found, crash))))
    return ok("fit(" + ", ".join(f"{name}={value_text(call.argument(name))}" for name in declared) + ").")


def _interrupted(fit: FitCall) -> bool:
    """Whether the fit was stopped by the grader's time limit (not by a mistake of the notebook)."""
    return fit.error is not None and "KeyboardInterrupt" in fit.error


def _trained_epochs(facts: Facts, fit: FitCall) -> tuple[int, list[FitCall]]:
    """The epochs the model was trained in all when `fit` ended, and the fits in a row that trained it."""
    chain = facts.kernel.continued(fit)
    return sum(call.epochs for call in chain), chain


def _epochs_over_fits(facts: Facts, fit: FitCall) -> tuple[int, str] | None:
    """The epochs asked for in all, and how they add up ("10 + 10"), when `fit` went on from earlier fits of the
    same weights (two fit(epochs=5) in a row are 10 epochs of training); None when it did not."""
    earlier = facts.kernel.continued(fit)[:-1]
    asked, start = fit.argument("epochs"), fit.argument("initial_epoch") or 0
    if not earlier or not all(isinstance(n, int) and not isinstance(n, bool) for n in (asked, start)):
        return None
    last = int(asked or 0) - int(start or 0)
    return sum(call.epochs for call in earlier) + last, " + ".join([*(str(c.epochs) for c in earlier), str(last)])


def _short_epochs(fit: FitCall) -> str:
    """Why the fit's epochs did not each go through the training data ("" when they did, or when that cannot be
    known): Keras runs ceil(samples kept for training / batch size) steps an epoch."""
    n, batch, split = fit.x.n_samples, fit.argument("batch_size"), fit.argument("validation_split")
    if fit.steps_seen is None or fit.epochs_seen is None or n is None or fit.argument("steps_per_epoch") is not None:
        return ""
    if not isinstance(batch, int) or isinstance(batch, bool) or batch < 1 or not isinstance(split, int | float):
        return ""
    per_epoch = math.ceil(math.ceil(n * (1.0 - float(split))) / batch)
    if fit.steps_seen >= fit.epochs_seen * per_epoch:
        return ""
    return (
        f"fit ran {fit.steps_seen} training steps in {fit.epochs_seen} epochs; going through the training data "
        f"takes {per_epoch} steps an epoch."
    )


class HistoryParams(Params):
    epochs: int | None = Field(None, ge=1)  # by default the rubric's `fit: epochs:`

    def check_assignment(self, assignment: Assignment) -> str | None:
        if self.epochs is None and not isinstance(assignment.fit.get("epochs"), int):
            return "give `epochs:` here or under `fit:`"
        return None


@check_kind("training.history", HistoryParams)
def history(facts: Facts, params: HistoryParams, ctx: Context) -> Verdict:
    """fit returned a history of the declared epochs, with validation metrics when fit holds out a split."""
    h = facts.kernel.history
    if h is None:
        return missing(facts, "No training history: fit never completed an epoch", "fit")
    epochs, fit = params.epochs or ctx.assignment.fit.get("epochs"), facts.kernel.training_fit()
    if fit is not None and fit.epochs_seen is not None and h.from_fit and h.epochs != fit.epochs_seen:
        return fail(f"The history holds {h.epochs} epochs, but the fit that returned it ran {fit.epochs_seen}.")
    if fit is not None and (short := _short_epochs(fit)):
        return fail(short)
    trained, chain = _trained_epochs(facts, fit) if fit is not None else (h.epochs, [])
    if len(chain) > 1 and trained != epochs:
        runs = " + ".join(str(call.epochs) for call in chain)
        return fail(
            f"The model was trained {trained} epochs over {len(chain)} fits in a row ({runs}), expected {epochs}."
        )
    if trained != epochs:
        why = " (training was stopped by the time limit)" if fit is not None and _interrupted(fit) else ""
        return fail(f"The history has {h.epochs} epochs, expected {epochs}{why}.")
    validations = [key for key in h.keys if key.startswith("val_")]
    split = ctx.assignment.fit.get("validation_split")
    if not validations and isinstance(split, int | float) and split > 0:
        return fail(f"The history has no validation metrics: pass validation_split={split:g} to fit.")
    if (not_verified := unverified(facts) or _validation_unverified(facts)) is not None:
        return not_verified
    return ok(f"{trained} epochs" + (f" with {', '.join(validations)}." if validations else "."))


@check_kind("training.weights_changed")
def weights_changed(facts: Facts, params: Params, ctx: Context) -> Verdict:
    """The model's weights really changed in a call to fit."""
    fit, reeval = _fit(facts), facts.reevaluation
    if fit is None or not any(c.weights_changed for c in facts.kernel.fit_calls):
        return missing(facts, "The model's weights never changed in a call to fit", "fit")
    if (not_verified := unverified(facts)) is not None:
        return not_verified
    if not reeval.optimizer_iterations:
        return fail("The saved model's optimizer took no training steps.")
    steps = reeval.optimizer_iterations
    return ok(f"The weights changed during training ({steps} optimizer steps).")


@integrity_kind("training")
def faked_training(facts: Facts, ctx: Context) -> list[str]:
    """Evidence that training was faked: a replaced fit, a history no fit produced, a disguised metric, a fit
    on anything but the whole training set, or recorded training that the saved model contradicts."""
    k = facts.kernel
    evidence = []
    if k.integrity.hooks_intact.get("fit") is False or "fit" in k.integrity.instance_overrides:
        evidence.append("`fit` was replaced by the notebook's own code (monkeypatched)")
    if k.history is not None and k.history.epochs and not any(c.completed_epochs for c in k.fit_calls):
        evidence.append(f"a training history of {k.history.epochs} epochs exists, but no call to fit produced it")
    reeval = facts.reevaluation
    if reeval.ok and not reeval.optimizer_iterations and k.history is not None and k.history.epochs:
        evidence.append("the history claims training, but the saved model's optimizer never took a step")
    saved = saved_compile(facts)
    if saved:
        evidence += [
            f"the compiled metric named {m.name!r} computes {m.identity}, not what its name says"
            for m in saved.metrics
            if disguised(m)
        ]
    if k.integrity.hooks_intact.get("variable") is False:
        evidence.append("Keras's variable creation was replaced by the notebook's own code (monkeypatched)")
    evidence += _test_set_evidence(facts)
    fit = k.training_fit()
    if fit is not None:
        evidence += _training_data_evidence(fit, facts, ctx.assignment)
        evidence += _as_happened_evidence(fit, facts)
        if reeval.ok:
            evidence += _saved_model_evidence(fit, facts)
    return evidence


def _test_set_evidence(facts: Facts) -> list[str]:
    """Every fit that trained, whichever model and however its data were named, trained on no test image."""
    found = []
    for number, call in enumerate(facts.kernel.fit_calls, start=1):
        if call.trained and call.x.test_rows:
            names = f" ({', '.join(call.x.names)})" if call.x.names else ""
            of = f"{call.x.test_rows:,} of its {call.x.n_samples:,}" if call.x.n_samples else f"{call.x.test_rows:,}"
            found.append(f"fit call {number} was given test images{names} to train on ({of} samples are test images)")
    return found


def _as_happened_evidence(fit: FitCall, facts: Facts) -> list[str]:
    """What the probe saw while the judged training ran, against what the notebook left: weights trained before
    it by something no fit recorded, and a history longer than its fit's epochs."""
    found = []
    untracked = max((call.trained_before for call in facts.kernel.continued(fit)), default=0)
    if untracked:
        found.append(
            f"the model's weights were already trained when fit began ({untracked} weight tensor(s) hold values no "
            "recorded fit gave them: a training loop of the notebook's own, set_weights or load_weights)"
        )
    history = facts.kernel.history
    if history is not None and history.from_fit and fit.epochs_seen is not None and history.epochs > fit.epochs_seen:
        found.append(f"the history holds {history.epochs} epochs, but the fit that returned it ran {fit.epochs_seen}")
    return found


def _training_data_evidence(fit: FitCall, facts: Facts, assignment: Assignment) -> list[str]:
    """The training set passed to the judged fit must be the provisioned training images and labels, by value (a
    part of them when a validation set was split off by hand), or what the notebook bound to the rubric's names
    for them when the values could not be compared."""
    train_images, train_labels = assignment.name("train_images"), assignment.name("train_labels")
    test_images, n_train = assignment.name("test_images"), facts.dataset.n_train
    if fit.x.test_rows:
        return []  # said by _test_set_evidence
    if fit.x.images.startswith("test_") or (not fit.x.held_images and test_images in fit.x.names):
        return [f"fit was given the test images ({test_images}) to train on"]
    if fit.x.n_samples is None:
        return []  # a dataset or a generator: its samples were not compared
    if fit.x.n_samples < _HAND_SPLIT * n_train:
        return [f"fit was given {fit.x.n_samples:,} sample(s) to train on, not all {n_train:,} of {train_images}"]
    found = []
    if train_images not in fit.x.names and not fit.x.held_images.startswith("train_"):
        found.append(f"fit was given images that are neither {train_images} nor the training images")
    if train_labels not in fit.y.names and not fit.y.held_labels.startswith("train_"):
        found.append(f"fit was given labels that are neither {train_labels} nor the training labels")
    return found


def _saved_model_evidence(fit: FitCall, facts: Facts) -> list[str]:
    """What the last fit that trained recorded, against the saved model: its weights, its optimizer's steps,
    and the history's last validation results on the validation split, rebuilt by the grader."""
    reeval = facts.reevaluation
    found = []
    if reeval.weights_digest and fit.weights_after != reeval.weights_digest:
        found.append(
            "the saved model's weights are not the ones the last training fit ended with "
            "(they were changed afterwards, e.g. by set_weights or load_weights)"
        )
    steps = reeval.optimizer_iterations
    if steps and fit.iterations_after is not None and steps != fit.iterations_after:
        found.append(
            f"the saved model's optimizer took {steps:,} steps, but the last training fit ended at step "
            f"{fit.iterations_after:,}"
        )
    return found + _validation_evidence(fit, facts)


def _validation_claims(facts: Facts) -> list[dict[str, float]]:
    """The history's validation results, one dict per epoch ("loss", "accuracy", ... without "val_")."""
    history = facts.kernel.history
    if history is None:
        return []
    series = {key[len("val_") :]: values for key, values in history.values.items() if key.startswith("val_")}
    epochs = max((len(values) for values in series.values()), default=0)
    return [{key: values[i] for key, values in series.items() if i < len(values)} for i in range(epochs)]


def _validation_unverified(facts: Facts) -> Verdict | None:
    """A failure when the history claims validation results on a split the grader can rebuild, but the saved
    model could not be evaluated on it; None otherwise."""
    fit = facts.kernel.training_fit()
    if fit is None or facts.reevaluation.validation is not None or ValidationRequest.of(fit) is None:
        return None
    if not _validation_claims(facts):
        return None
    why = facts.reevaluation.message or "the saved model is not compiled"
    return fail(f"Not verified: the saved model could not be evaluated on the validation split ({why}).")


def _validation_evidence(fit: FitCall, facts: Facts) -> list[str]:
    """The history's validation results against the saved model's on the rebuilt split: the last epoch's, or any
    epoch's (EarlyStopping(restore_best_weights=True) puts the best epoch's weights back, "best" as its monitor,
    mode, min_delta and baseline say). Weights that some epoch of this very training reached are no forgery;
    a history made longer than the training was is the epochs checks' to find. A split the grader could not
    evaluate is no evidence (the history check says it is not verified)."""
    measured, claims = facts.reevaluation.validation, _validation_claims(facts)
    epochs = fit.argument("epochs")
    if measured is None or not claims:
        return []
    if fit.error is not None and isinstance(epochs, int) and len(claims) < epochs:
        return []  # stopped mid-epoch: the weights moved on after the last validation

    def differences(claimed: dict[str, float]) -> list[str]:
        return [
            f"val_{key} {claimed[key]:.4f} claimed, {value:.4f} measured"
            for key, value in sorted(measured.values.items())
            if key in claimed and not abs(claimed[key] - value) <= _VALIDATION_TOLERANCE * max(1.0, abs(value))
        ]

    if any(not differences(claimed) for claimed in claims):
        return []
    return [
        f"the history's last epoch does not match the saved model on the validation split "
        f"({measured.n_samples:,} training images): " + "; ".join(differences(claims[-1]))
    ]


@review_kind("training.accuracy_far_above_reference")
def accuracy_far_above_reference(facts: Facts, ctx: Context) -> list[str]:
    """A test accuracy far above what the reference reaches under the very settings the notebook trained with:
    a sign of training on the test set that nothing recorded. Never evidence: a person looks."""
    fit, measured, reference = facts.kernel.training_fit(), facts.reevaluation.accuracy, ctx.reference_accuracy
    if fit is None or measured is None or reference is None or not facts.reevaluation.ok:
        return []
    if measured <= reference + max(_FAR_ABOVE, (1.0 - reference) / 2) or not _as_assigned(fit, facts, ctx.assignment):
        return []
    return [
        f"the test accuracy {measured:.4f} is far above the reference's {reference:.4f} under the same settings "
        "(model, optimizer, learning rate, fit arguments); every run starts from the same random state"
    ]


def _as_assigned(fit: FitCall, facts: Facts, assignment: Assignment) -> bool:
    """Whether the judged training used the assignment's settings: its fit arguments over the fits in a row, the
    optimizer and learning rate in effect, and a model of the declared size."""
    declared = assignment.compile
    if not all(same_value(fit.argument(name), value) for name, value in assignment.fit.items() if name != "epochs"):
        return False
    epochs = assignment.fit.get("epochs")
    if epochs is not None and not same_value(_trained_epochs(facts, fit)[0], epochs):
        return False
    optimizer = declared.optimizer
    if optimizer and (fit.optimizer is None or not same_name(_class_of(fit.optimizer), optimizer.class_name)):
        return False
    rate = declared.learning_rate
    if rate is not None and not all(same_value(r, rate) for r in fit.learning_rates):
        return False
    params = assignment.model.params
    return params is None or facts.kernel.model.total_params == params
