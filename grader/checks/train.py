"""Train: batch size and epochs, compile settings, the actual fit call, its history, and real training."""

from __future__ import annotations

from grader.checks import Check, Context, Verdict, cell_trouble, fail, ok
from grader.facts import CompileCall, Facts, FitCall

BATCH_SIZE, EPOCHS, VALIDATION_SPLIT, LEARNING_RATE = 128, 20, 0.1, 0.02
CATEGORICAL_ACCURACY = {"categorical_accuracy"}
# With a categorical cross-entropy loss, Keras resolves the plain "accuracy" metric to categorical accuracy.
ACCURACY_ALIASES = {"accuracy", "acc"}


def _compile(facts: Facts) -> CompileCall | None:
    calls = facts.kernel.compile_calls
    good = [c for c in calls if c.error is None]
    chosen = good or calls
    return chosen[-1] if chosen else None


def _fit(facts: Facts) -> FitCall | None:
    calls = facts.kernel.fit_calls
    return calls[-1] if calls else None


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
    used = facts.kernel.model.loss or call.loss
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
    model = facts.kernel.model
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
    names = set(call.metrics)
    if names & CATEGORICAL_ACCURACY:
        return ok("Tracks categorical accuracy.")
    if names & ACCURACY_ALIASES and (facts.kernel.model.loss or call.loss) == "categorical_crossentropy":
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
    """Evidence that training was faked: a History nobody's fit returned, or a replaced fit."""
    k = facts.kernel
    evidence = []
    if k.integrity.hooks_intact.get("fit") is False or "fit" in k.integrity.instance_overrides:
        evidence.append("`fit` was replaced by the notebook's own code (monkeypatched)")
    if k.history is not None and not k.history.from_fit and not any(c.completed_epochs for c in k.fit_calls):
        evidence.append(f"a training history of {k.history.epochs} epochs exists, but no call to fit produced it")
    reeval = facts.reevaluation
    if reeval.ok and reeval.optimizer_iterations == 0 and k.history is not None and k.history.epochs:
        evidence.append("the history claims training, but the saved model's optimizer never took a step")
    return evidence


CHECKS: dict[str, Check] = {
    "settings": settings,
    "loss": loss,
    "optimizer": optimizer,
    "metrics": metrics,
    "fit_call": fit_call,
    "history": history,
    "trained": trained,
}
