"""The evidence that training was faked (fit on the test set, weights trained by something unrecorded, claims
the saved model contradicts), and results far above the reference, worth a person's look."""

from __future__ import annotations

from grader.assignment import Assignment
from grader.checks.base import (
    Context,
    disguised,
    integrity_kind,
    review_kind,
    same_name,
    same_value,
    saved_compile,
)
from grader.checks.compile_settings import class_of
from grader.checks.training import trained_epochs, validation_claims
from grader.facts import Facts, FitCall

# A history's last validation results against the saved model's on the same split: float32 sums in other
# batches differ in the last digits, a single image in a few thousand moves accuracy by more than this.
_VALIDATION_TOLERANCE = 1e-3


# Every kernel starts from one random state, so the assignment's own settings reach about the reference's accuracy
# (identical notebooks differ by up to 0.025 on 12,000 images): a test accuracy half-way from it to 1.0, and at
# least this far above it, is worth a person's look.
_FAR_ABOVE = 0.04


# The share of the training set a fit must be given: the rest may be a validation set split off by hand.
_HAND_SPLIT = 0.8


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


def _validation_evidence(fit: FitCall, facts: Facts) -> list[str]:
    """The history's validation results against the saved model's on the rebuilt split: the last epoch's, or any
    epoch's (EarlyStopping(restore_best_weights=True) puts the best epoch's weights back, "best" as its monitor,
    mode, min_delta and baseline say). Weights that some epoch of this very training reached are no forgery;
    a history made longer than the training was is the epochs checks' to find. A split the grader could not
    evaluate is no evidence (the history check says it is not verified)."""
    measured, claims = facts.reevaluation.validation, validation_claims(facts)
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
    if epochs is not None and not same_value(trained_epochs(facts, fit)[0], epochs):
        return False
    optimizer = declared.optimizer
    if optimizer and (fit.optimizer is None or not same_name(class_of(fit.optimizer), optimizer.class_name)):
        return False
    rate = declared.learning_rate
    if rate is not None and not all(same_value(r, rate) for r in fit.learning_rates):
        return False
    params = assignment.model.params
    return params is None or facts.kernel.model.total_params == params
