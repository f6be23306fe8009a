"""Checks of training: the arguments fit was called with, the history it returned and whether the weights really
changed."""

from __future__ import annotations

import math

from pydantic import Field

from grader.assignment import Assignment
from grader.checks.base import (
    Context,
    Params,
    Verdict,
    check_kind,
    fail,
    missing,
    ok,
    same_value,
    unverified,
    value_text,
)
from grader.facts import Facts, FitCall, ValidationRequest

# Arguments older Keras versions took, and what they are called now.
_RENAMED_FIT_ARGUMENTS = {"nb_epoch": "epochs"}


def judged_fit(facts: Facts) -> FitCall | None:
    """The last fit that trained, else the last fit called."""
    calls = facts.kernel.fit_calls
    return facts.kernel.training_fit() or (calls[-1] if calls else None)


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
    call = judged_fit(facts)
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


def trained_epochs(facts: Facts, fit: FitCall) -> tuple[int, list[FitCall]]:
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
    trained, chain = trained_epochs(facts, fit) if fit is not None else (h.epochs, [])
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
    if (not_verified := unverified(facts) or validation_unverified(facts)) is not None:
        return not_verified
    return ok(f"{trained} epochs" + (f" with {', '.join(validations)}." if validations else "."))


def validation_claims(facts: Facts) -> list[dict[str, float]]:
    """The history's validation results, one dict per epoch ("loss", "accuracy", ... without "val_")."""
    history = facts.kernel.history
    if history is None:
        return []
    series = {key[len("val_") :]: values for key, values in history.values.items() if key.startswith("val_")}
    epochs = max((len(values) for values in series.values()), default=0)
    return [{key: values[i] for key, values in series.items() if i < len(values)} for i in range(epochs)]


def validation_unverified(facts: Facts) -> Verdict | None:
    """A failure when the history claims validation results on a split the grader can rebuild, but the saved
    model could not be evaluated on it; None otherwise."""
    fit = facts.kernel.training_fit()
    if fit is None or facts.reevaluation.validation is not None or ValidationRequest.of(fit) is None:
        return None
    if not validation_claims(facts):
        return None
    why = facts.reevaluation.message or "the saved model is not compiled"
    return fail(f"Not verified: the saved model could not be evaluated on the validation split ({why}).")


@check_kind("training.weights_changed")
def weights_changed(facts: Facts, params: Params, ctx: Context) -> Verdict:
    """The model's weights really changed in a call to fit."""
    fit, reeval = judged_fit(facts), facts.reevaluation
    if fit is None or not any(c.weights_changed for c in facts.kernel.fit_calls):
        return missing(facts, "The model's weights never changed in a call to fit", "fit")
    if (not_verified := unverified(facts)) is not None:
        return not_verified
    if not reeval.optimizer_iterations:
        return fail("The saved model's optimizer took no training steps.")
    steps = reeval.optimizer_iterations
    return ok(f"The weights changed during training ({steps} optimizer steps).")
