"""Train: batch size and epochs, compile settings, the actual fit call, its history, and real training."""

from __future__ import annotations

from grader.checks import Check, Context, Verdict, cell_trouble, disguised, fail, ok, saved_compile
from grader.facts import CompileCall, Facts, FitCall, ValidationRequest

BATCH_SIZE, EPOCHS, VALIDATION_SPLIT, LEARNING_RATE = 128, 20, 0.1, 0.02
CATEGORICAL_ACCURACY = {"categorical_accuracy"}
# With a categorical cross-entropy loss, Keras resolves the plain "accuracy" metric to categorical accuracy.
ACCURACY_ALIASES = {"accuracy", "acc"}
# A history's last validation results against the saved model's on the same split: float32 sums in other
# batches differ in the last digits, a single image in a few thousand moves accuracy by more than this.
_VALIDATION_TOLERANCE = 1e-3


def _compile(facts: Facts) -> CompileCall | None:
    calls = facts.kernel.compile_calls
    good = [c for c in calls if c.error is None]
    chosen = good or calls
    return chosen[-1] if chosen else None


def _fit(facts: Facts) -> FitCall | None:
    calls = facts.kernel.fit_calls
    return calls[-1] if calls else None


def _loss(facts: Facts, call: CompileCall) -> str | None:
    saved = saved_compile(facts)
    return saved.loss if saved else facts.kernel.model.loss or call.loss


def _no_compile(facts: Facts) -> Verdict:
    hint = cell_trouble(facts, "compile")
    if "'lr'" in hint:
        hint += " In Keras 3 the argument is `learning_rate=`, not `lr=`."
    return fail("model.compile(...) was never called successfully." + hint)


def settings(facts: Facts, ctx: Context) -> Verdict:
    k = facts.kernel
    problems = []
    if k.batch_size != BATCH_SIZE:
        problems.append(
            f"`batch_size` is {k.batch_size if k.batch_size is not None else 'not defined'}, expected {BATCH_SIZE}"
        )
    if k.epochs != EPOCHS:
        problems.append(f"`epochs` is {k.epochs if k.epochs is not None else 'not defined'}, expected {EPOCHS}")
    if problems:
        return fail("; ".join(problems) + "." + cell_trouble(facts, "batch_size", "epochs"))
    return ok(f"batch_size = {BATCH_SIZE}, epochs = {EPOCHS}.")


def loss(facts: Facts, ctx: Context) -> Verdict:
    call = _compile(facts)
    if call is None:
        return _no_compile(facts)
    used = _loss(facts, call)
    if used == "categorical_crossentropy":
        return ok("Loss: categorical cross-entropy.")
    hint = (
        " (sparse cross-entropy is for integer labels; the labels should be one-hot)"
        if used and "sparse" in used
        else ""
    )
    return fail(f"The loss is {used!r}, expected CategoricalCrossentropy{hint}.")


def optimizer(facts: Facts, ctx: Context) -> Verdict:
    call = _compile(facts)
    if call is None:
        return _no_compile(facts)
    saved, model = saved_compile(facts), facts.kernel.model
    if saved:
        name, rate = saved.optimizer, saved.learning_rate
    else:
        name = model.optimizer or call.optimizer
        rate = model.learning_rate if model.learning_rate is not None else call.learning_rate
    if name != "sgd":
        return fail(f"The optimizer is {name!r}, expected SGD(learning_rate={LEARNING_RATE}).")
    if rate is None or abs(rate - LEARNING_RATE) > 1e-6:
        return fail(f"SGD's learning rate is {rate}, expected {LEARNING_RATE}.")
    return ok(f"SGD with learning rate {LEARNING_RATE}.")


def metrics(facts: Facts, ctx: Context) -> Verdict:
    call = _compile(facts)
    if call is None:
        return _no_compile(facts)
    saved = saved_compile(facts)
    names = {m.identity for m in saved.metrics} if saved else set(call.metrics)
    if names & CATEGORICAL_ACCURACY:
        return ok("Tracks categorical accuracy.")
    if names & ACCURACY_ALIASES and _loss(facts, call) == "categorical_crossentropy":
        return ok("Tracks 'accuracy', which Keras resolves to categorical accuracy for this loss.")
    return fail(f"The metrics are {sorted(names) or 'none'}; expected CategoricalAccuracy().")


def fit_call(facts: Facts, ctx: Context) -> Verdict:
    call = _fit(facts)
    if call is None:
        return fail("model.fit(...) was never called." + cell_trouble(facts, "fit"))
    problems = []
    if call.unknown_arguments:
        old = {"nb_epoch": "epochs"}
        renames = [f"`{a}` (use `{old[a]}`)" if a in old else f"`{a}`" for a in call.unknown_arguments]
        problems.append("fit() does not accept " + ", ".join(renames))
    if call.batch_size != BATCH_SIZE:
        found = call.batch_size if call.batch_size is not None else "not passed (Keras then uses 32)"
        problems.append(f"batch_size was {found}, expected {BATCH_SIZE}")
    if call.epochs != EPOCHS:
        problems.append(f"epochs was {call.epochs}, expected {EPOCHS}")
    if call.validation_split is None or abs(call.validation_split - VALIDATION_SPLIT) > 1e-9:
        problems.append(f"validation_split was {call.validation_split}, expected {VALIDATION_SPLIT}")
    if problems:
        return fail("In the fit call: " + "; ".join(problems) + ".")
    return ok(f"fit(batch_size={BATCH_SIZE}, epochs={EPOCHS}, validation_split={VALIDATION_SPLIT}).")


def history(facts: Facts, ctx: Context) -> Verdict:
    h = facts.kernel.history
    if h is None:
        return fail("No training history: fit never completed an epoch." + cell_trouble(facts, "fit"))
    vals = [key for key in h.keys if key.startswith("val_")]
    if h.epochs != EPOCHS:
        fit = _fit(facts)
        why = (
            " (training was stopped by the time limit)"
            if fit and fit.error and "KeyboardInterrupt" in fit.error
            else ""
        )
        return fail(f"The history has {h.epochs} epochs, expected {EPOCHS}{why}.")
    if not vals:
        return fail("The history has no validation metrics: pass validation_split=0.1 to fit.")
    return ok(f"{h.epochs} epochs with {', '.join(vals)}.")


def trained(facts: Facts, ctx: Context) -> Verdict:
    fit = _fit(facts)
    reeval = facts.reevaluation
    if fit is None or not any(c.weights_changed for c in facts.kernel.fit_calls):
        return fail("The model's weights never changed in a call to fit." + cell_trouble(facts, "fit"))
    if reeval.ok and not reeval.optimizer_iterations:
        return fail("The saved model's optimizer took no training steps.")
    steps = reeval.optimizer_iterations if reeval.ok else fit.iterations_after
    return ok(f"The weights changed during training ({steps} optimizer steps).")


def integrity(facts: Facts, ctx: Context) -> list[str]:
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
    fit = k.training_fit()
    if fit is not None:
        evidence += _training_data_evidence(fit, facts.dataset.n_train)
        if reeval.ok:
            evidence += _saved_model_evidence(fit, facts)
    return evidence


def _training_data_evidence(fit: FitCall, n_train: int) -> list[str]:
    """The training set passed to fit must be the notebook's x_train and y_train (or the provisioned training
    images and labels), all of them."""
    if fit.x_variable == "x_test" or fit.x_pixels.startswith("test_"):
        return ["fit was given the test images (x_test) to train on"]
    if fit.n_samples != n_train:
        count = f"{fit.n_samples:,} sample(s)" if fit.n_samples is not None else "an unknown number of samples"
        return [f"fit was given {count} to train on, not all {n_train:,} of x_train"]
    found = []
    if fit.x_variable != "x_train" and not fit.x_pixels.startswith("train_"):
        found.append("fit was given images that are neither x_train nor the training images")
    if fit.y_variable != "y_train" and not fit.y_labels.startswith("train_"):
        found.append("fit was given labels that are neither y_train nor the training labels")
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


def _validation_evidence(fit: FitCall, facts: Facts) -> list[str]:
    history, measured = facts.kernel.history, facts.reevaluation.validation
    if history is None:
        return []
    if fit.error is not None and history.epochs < (fit.epochs or 0):
        return []  # stopped mid-epoch: the weights moved on after the last validation
    claimed = {
        key[len("val_") :]: values[-1] for key, values in history.values.items() if key.startswith("val_") and values
    }
    if not claimed:
        return []
    if measured is None:
        if ValidationRequest.of(fit) is None:
            return []  # not a preparation of the training set the grader can rebuild: nothing to compare
        why = facts.reevaluation.message or "no result"
        return [
            f"the history reports validation results, but the saved model could not be evaluated on that split ({why})"
        ]
    differ = [
        f"val_{key} {claimed[key]:.4f} claimed, {value:.4f} measured"
        for key, value in sorted(measured.values.items())
        if key in claimed and not abs(claimed[key] - value) <= _VALIDATION_TOLERANCE * max(1.0, abs(value))
    ]
    if not differ:
        return []
    return [
        f"the history's last epoch does not match the saved model on the validation split "
        f"({measured.n_samples:,} training images): " + "; ".join(differ)
    ]


CHECKS: dict[str, Check] = {
    "settings": settings,
    "loss": loss,
    "optimizer": optimizer,
    "metrics": metrics,
    "fit_call": fit_call,
    "history": history,
    "trained": trained,
}
