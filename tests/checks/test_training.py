"""Training checks over hand-made facts: compile settings (loss, optimizer, metrics, in any spelling), fit's
arguments, the history, and the evidence of faked training."""

from __future__ import annotations

from typing import Any

import pytest
from msgspec.structs import replace

from grader.facts import (
    ArrayFacts,
    CellFacts,
    CompileCall,
    DataOrigin,
    Facts,
    FitCall,
    HistoryFacts,
    IntegrityFacts,
    VariableFacts,
)
from grader.keras_facts import KerasObject
from grader.reevaluation_facts import CompiledFacts, MetricFacts, ValidationFacts
from tests.checks.conftest import kind_verdict, section_flags
from tests.factories import (
    N_TRAIN,
    WEIGHTS,
    X_TRAIN,
    Y_TRAIN,
    check,
    make_facts,
    make_grade,
    origin,
    perfect_fit,
    points,
)


@pytest.mark.parametrize("source", ["saved model", "kernel record"])
@pytest.mark.parametrize(
    ("loss", "metrics", "ok_loss", "ok_metrics"),
    [
        ("categorical_crossentropy", ["categorical_accuracy"], True, True),
        ("categorical_crossentropy", ["accuracy"], True, True),
        ("sparse_categorical_crossentropy", ["sparse_categorical_accuracy"], False, False),
        ("mean_squared_error", ["categorical_accuracy"], False, True),
    ],
)
def test_equivalent_and_wrong_compile_spellings(
    loss: str, metrics: list[str], ok_loss: bool, ok_metrics: bool, source: str
) -> None:
    """The saved model's compile config decides; the kernel's record only when the saved model has none."""
    if source == "saved model":
        compiled = CompiledFacts(loss, [MetricFacts(m, m) for m in metrics], "sgd", 0.02)
        facts = make_facts(reevaluation={"compiled": compiled})
    else:
        model = replace(make_facts().kernel.model, loss=loss)
        call = CompileCall(loss, "sgd", 0.02, metrics)
        facts = make_facts(kernel={"model": model, "compile_calls": [call]}, reevaluation={"compiled": None})
    grade = make_grade(facts=facts)
    assert check(grade, "loss").passed is ok_loss
    assert check(grade, "metrics").passed is ok_metrics


def test_old_lr_spelling_gets_a_hint() -> None:
    cells = list(make_facts().execution.cells)
    cells[4] = CellFacts(
        index=5,
        status="error",
        source=cells[4].source,
        error_name="ValueError",
        error_value="Argument(s) not recognized: {'lr': 0.02}",
    )
    facts = make_facts(execution={"cells": cells}, kernel={"compile_calls": [], "fit_calls": []})
    assert "learning_rate=" in check(make_grade(facts=facts), "optimizer").message


def test_fit_call_arguments_come_from_the_recorded_call() -> None:
    fit = replace(make_facts().kernel.fit_calls[0], arguments={"epochs": 20, "validation_split": 0.0})
    verdict = check(make_grade(facts=make_facts(kernel={"fit_calls": [fit]})), "fit_call")
    assert not verdict.passed and "Keras then uses 32" in verdict.message and "validation_split" in verdict.message


def _failed_fit(**changes: object) -> FitCall:
    """A fit that raised at once: no epoch, no step."""
    fit = FitCall({}, DataOrigin(n_samples=N_TRAIN), DataOrigin(), 0, 0, 0, False, [], error="TypeError: nb_epoch")
    return replace(fit, **changes)


def test_old_nb_epoch_argument_is_named() -> None:
    fit = _failed_fit(unknown_arguments=["nb_epoch"])
    verdict = check(make_grade(facts=make_facts(kernel={"fit_calls": [fit]})), "fit_call")
    assert "`nb_epoch` (use `epochs`)" in verdict.message


def test_fake_history_zeroes_training_and_is_flagged() -> None:
    history = HistoryFacts(
        epochs=20, keys=["loss", "val_loss"], values={"loss": [0.1] * 20, "val_loss": [0.1] * 20}, from_fit=False
    )
    facts = make_facts(kernel={"history": history, "fit_calls": []}, reevaluation={"optimizer_iterations": 0})
    grade = make_grade(facts=facts)
    assert points(grade, "train") == 0
    assert any("no call to fit produced it" in flag for flag in grade.integrity_flags)


def test_monkeypatched_fit_is_flagged() -> None:
    hooks = IntegrityFacts(hooks_intact={"fit": False, "evaluate": True}, instance_overrides=[])
    facts = make_facts(kernel={"integrity": hooks})
    grade = make_grade(facts=facts)
    assert points(grade, "train") == 0 and any("monkeypatched" in f for f in grade.integrity_flags)


def test_a_model_that_cannot_be_re_evaluated_is_not_verified_nor_accused() -> None:
    """A layer or constraint of the notebook's own: nothing the saved model would confirm passes."""
    why = "the saved model could not be loaded: TypeError: Could not locate class 'KeepAll'."
    grade = make_grade(facts=make_facts(reevaluation={"ok": False, "message": why}))
    for check_id in ("history", "trained", "matches"):
        verdict = check(grade, check_id)
        assert not verdict.passed and "Not verified" in verdict.message and "KeepAll" in verdict.message
    assert not check(grade, "accuracy").passed and not grade.integrity_flags


def test_weights_of_an_earlier_epoch_put_back_are_no_evidence() -> None:
    """EarlyStopping(restore_best_weights=True): the saved model scores what the best epoch did, not the last."""
    history = make_facts().kernel.history
    best = {key[len("val_") :]: values[5] for key, values in history.values.items() if key.startswith("val_")}
    restored = ValidationFacts(0.1, N_TRAIN // 10, best)
    grade = make_grade(facts=make_facts(reevaluation={"validation": restored}))
    assert grade.total == 100 and not grade.integrity_flags


def test_metric_named_like_another_is_judged_by_what_it_computes() -> None:
    """A top-k accuracy named "categorical_accuracy": 1.0 on ten classes, whatever the model predicts."""
    topk = MetricFacts("categorical_accuracy", "top_k_categorical_accuracy(k=10)", "categorical_accuracy")
    compiled = replace(make_facts().reevaluation.compiled, metrics=[topk])
    evaluated = replace(make_facts().kernel.evaluate_calls[0], result=[2.1, 1.0])
    facts = make_facts(
        variables={"score": VariableFacts(True, "list", "[2.1, 1.0]", value=[2.1, 1.0], from_evaluate=True)},
        kernel={"evaluate_calls": [evaluated]},
        execution={"stdout": "Test loss: 2.1\nTest accuracy: 1.0\n"},
        reevaluation={"compiled": compiled, "student_data_result": [2.1, 1.0], "student_data_accuracy": 0.126},
    )
    grade = make_grade(facts=facts)
    assert points(grade, "train") == 0 and points(grade, "evaluate") == 0
    assert "top_k_categorical_accuracy(k=10)" in check(grade, "metrics").message
    assert any(
        "'categorical_accuracy' computes top_k_categorical_accuracy(k=10)" in f for f in section_flags(grade, "Train")
    )
    assert any("0.1260" in f and "1.0000" in f for f in section_flags(grade, "Evaluate"))
    # The accuracy is the grader's own count, never the compiled metric's value.
    accuracy = check(grade, "accuracy")
    assert not accuracy.passed and "0.1260" in accuracy.message


@pytest.mark.parametrize(
    ("name", "identity", "name_identity"),
    [
        ("accuracy", "categorical_accuracy", "accuracy"),  # what Keras itself does for "accuracy"
        ("acc", "sparse_categorical_accuracy", "accuracy"),
        ("my_metric", "categorical_accuracy", None),  # a name Keras does not know claims nothing
        ("categorical_accuracy", "categorical_accuracy", "categorical_accuracy"),
    ],
)
def test_honest_metric_names_are_no_evidence(name: str, identity: str, name_identity: str | None) -> None:
    compiled = replace(make_facts().reevaluation.compiled, metrics=[MetricFacts(name, identity, name_identity)])
    grade = make_grade(facts=make_facts(reevaluation={"compiled": compiled}))
    assert not grade.integrity_flags


def test_made_up_history_disagrees_with_the_saved_model_on_the_validation_split() -> None:
    """A replaced fit that wrote the probe's own record, hooks and step counter: only the history's claims
    against the saved model's results on the rebuilt validation split give it away."""
    measured = ValidationFacts(0.1, 6000, {"loss": 2.31, "categorical_accuracy": 0.101})
    grade = make_grade(facts=make_facts(reevaluation={"validation": measured}))
    assert points(grade, "train") == 0
    flags = section_flags(grade, "Train")
    claimed = make_facts().kernel.history.values["val_categorical_accuracy"][-1]
    assert any(f"val_categorical_accuracy {claimed:.4f} claimed, 0.1010 measured" in f for f in flags), flags
    assert any("6,000 training images" in f for f in flags)


def test_validation_within_float32_noise_is_no_evidence() -> None:
    honest = make_facts().reevaluation.validation
    noisy = {key: value * (1 + 3e-4) for key, value in honest.values.items()}
    grade = make_grade(facts=make_facts(reevaluation={"validation": replace(honest, values=noisy)}))
    assert grade.total == 100 and not grade.integrity_flags


def test_fit_stopped_mid_epoch_is_not_compared_with_its_last_validation() -> None:
    """The time limit interrupts fit: the saved weights moved on after the last epoch's validation."""
    fit = perfect_fit(error="KeyboardInterrupt: ", completed_epochs=7)
    history = replace(
        make_facts().kernel.history,
        epochs=7,
        values={k: v[:7] for k, v in make_facts().kernel.history.values.items()},
    )
    facts = make_facts(kernel={"fit_calls": [fit], "history": history})
    grade = make_grade(facts=facts)
    assert not grade.integrity_flags and points(grade, "train") < 20


def test_history_that_cannot_be_checked_on_its_validation_split_is_not_verified_and_not_accused() -> None:
    """The grader failing to evaluate the split is no evidence of faking; the history just is not verified."""
    facts = make_facts(reevaluation={"validation": None, "message": "evaluate on the validation split failed: boom"})
    grade = make_grade(facts=facts)
    assert not grade.integrity_flags and points(grade, "train") == 17
    history = check(grade, "history")
    assert not history.passed and "Not verified" in history.message and "boom" in history.message


def test_weights_set_after_a_fit_on_ten_images() -> None:
    fit = perfect_fit(x=DataOrigin(n_samples=10), y=DataOrigin(n_samples=10), weights_after="after-ten")
    grade = make_grade(facts=make_facts(kernel={"fit_calls": [fit]}))
    assert points(grade, "train") == 0
    flags = section_flags(grade, "Train")
    assert any("10 sample(s)" in f and "60,000" in f for f in flags), flags
    assert any("set_weights" in f for f in flags)


def test_fit_on_the_test_set() -> None:
    fit = perfect_fit(
        x=origin("x_test", "test_scaled", 10_000, [28, 28, 1]), y=origin("y_test", "test_onehot", 10_000, [10])
    )
    grade = make_grade(facts=make_facts(kernel={"fit_calls": [fit]}))
    assert points(grade, "train") == 0
    assert any("test images (x_test)" in f for f in section_flags(grade, "Train"))


@pytest.mark.parametrize(
    ("x", "y"),
    [
        # the provisioned training set under other names
        (replace(X_TRAIN, names=["X"]), replace(Y_TRAIN, names=["Y"])),
        # x_train normalized otherwise, soft labels
        (replace(X_TRAIN, images=""), replace(Y_TRAIN, labels="train_other")),
        # unscaled pixels
        (replace(X_TRAIN, images="train_raw"), Y_TRAIN),
    ],
)
def test_training_on_the_whole_training_set_in_any_form_is_no_evidence(x: DataOrigin, y: DataOrigin) -> None:
    grade = make_grade(facts=make_facts(kernel={"fit_calls": [perfect_fit(x=x, y=y)]}))
    assert not section_flags(grade, "Train")


def test_fit_on_labels_that_are_not_the_training_labels() -> None:
    fit = perfect_fit(y=replace(Y_TRAIN, names=[], labels=""))
    grade = make_grade(facts=make_facts(kernel={"fit_calls": [fit]}))
    assert any("labels that are neither y_train" in f for f in section_flags(grade, "Train"))


def test_step_counter_set_by_hand() -> None:
    grade = make_grade(facts=make_facts(reevaluation={"optimizer_iterations": 100_000}))
    assert points(grade, "train") == 0
    assert any("100,000 steps" in f for f in section_flags(grade, "Train"))


def test_saved_model_without_an_optimizer_behind_a_history() -> None:
    grade = make_grade(facts=make_facts(reevaluation={"optimizer_iterations": None, "compiled": None}))
    assert any("never took a step" in f for f in section_flags(grade, "Train"))


def test_checks_read_the_last_fit_that_trained() -> None:
    """A later fit that raised at once (a typo in an argument) changes nothing the saved model is checked on."""
    failed = _failed_fit(iterations_before=8440, iterations_after=8440, weights_after="x")
    facts = make_facts(kernel={"fit_calls": [make_facts().kernel.fit_calls[0], failed]})
    assert facts.kernel.training_fit() == make_facts().kernel.fit_calls[0]
    assert not make_grade(facts=facts).integrity_flags


LOGITS_LOSS = {"compile": {"loss": {"SparseCategoricalCrossentropy": {"from_logits": True}}}}


def _with_loss(found: KerasObject, source: str) -> Facts:
    """Facts whose loss is `found`, trained with it: in the saved model's compile config, or only in the kernel's
    record."""
    fits = [replace(fit, loss=found.name) for fit in make_facts().kernel.fit_calls]
    if source == "saved model":
        compiled = replace(make_facts().reevaluation.compiled, loss="x", loss_object=found)
        return make_facts(kernel={"fit_calls": fits}, reevaluation={"compiled": compiled})
    call = replace(make_facts().kernel.compile_calls[0], loss="x", loss_object=found)
    return make_facts(kernel={"compile_calls": [call], "fit_calls": fits}, reevaluation={"compiled": None})


@pytest.mark.parametrize("source", ["saved model", "kernel record"])
@pytest.mark.parametrize(
    ("found", "passes"),
    [
        # the class object, and the function a string resolves to (its keyword defaults are its settings)
        (KerasObject("sparse_categorical_crossentropy", {"from_logits": True, "reduction": "sum"}), True),
        (KerasObject("sparse_categorical_crossentropy", {"from_logits": False, "axis": -1}), False),
        (KerasObject("categorical_crossentropy", {"from_logits": True}), False),
    ],
)
def test_a_loss_with_settings_is_compared_by_class_and_the_settings_named(
    found: KerasObject, passes: bool, source: str
) -> None:
    verdict = kind_verdict("training.loss", _with_loss(found, source), LOGITS_LOSS)
    assert verdict.passed is passes
    assert "expected 'sparse_categorical_crossentropy'" not in verdict.message
    if not passes and found.name.startswith("sparse"):
        assert verdict.message == "The loss sparse_categorical_crossentropy has from_logits False, expected True."
    if found.name.startswith("categorical"):  # one-hot labels' loss where the labels should stay integers
        assert "expected SparseCategoricalCrossentropy(from_logits=True)" in verdict.message
        assert "the labels should stay integer class ids" in verdict.message


def test_a_bare_loss_name_accepts_any_settings() -> None:
    found = KerasObject("sparse_categorical_crossentropy", {"from_logits": True})
    verdict = kind_verdict(
        "training.loss", _with_loss(found, "saved model"), {"compile": {"loss": "sparse_categorical_crossentropy"}}
    )
    assert verdict.passed, verdict.message


def test_optimizer_and_metrics_with_settings() -> None:
    compiled = replace(
        make_facts().reevaluation.compiled,
        optimizer_object=KerasObject("sgd", {"learning_rate": 0.019999999552965164, "momentum": 0.0}),
        metric_objects=[KerasObject("accuracy"), KerasObject("sparse_top_k_categorical_accuracy", {"k": 3})],
    )
    facts = make_facts(reevaluation={"compiled": compiled})
    declared = {
        "compile": {
            "optimizer": {"SGD": {"learning_rate": 0.02}},
            "metrics": ["accuracy", {"SparseTopKCategoricalAccuracy": {"k": 3}}],
        }
    }
    assert kind_verdict("training.optimizer", facts, declared).passed
    assert kind_verdict("training.metrics", facts, declared).passed
    declared["compile"]["metrics"] = [{"SparseTopKCategoricalAccuracy": {"k": 5}}]
    verdict = kind_verdict("training.metrics", facts, declared)
    assert not verdict.passed and "SparseTopKCategoricalAccuracy(k=5)" in verdict.message


# ------------------------------------------------------------------------------------ training as it happened


def _train_checks(facts: Facts) -> dict[str, Any]:
    grade = make_grade(facts=facts)
    return {c.id: c for s in grade.sections if s.id == "train" for c in s.checks} | {
        "flags": section_flags(grade, "Train")
    }


def test_a_history_padded_after_a_fit_stopped_early_is_caught() -> None:
    """fit(epochs=20) stopped after one epoch, then the History object padded to 20 entries."""
    facts = make_facts(kernel={"fit_calls": [perfect_fit(epochs_seen=1, completed_epochs=1)]})
    found = _train_checks(facts)
    assert not found["history"].passed and "ran 1" in found["history"].message
    assert any("holds 20 epochs, but the fit that returned it ran 1" in flag for flag in found["flags"])


@pytest.mark.parametrize(
    ("changes", "check_id", "message"),
    [
        ({"optimizer": "adam"}, "optimizer", "trained with adam"),
        ({"learning_rates": [0.3000000119]}, "optimizer", "learning rate was 0.3"),
        ({"loss": "mean_squared_error"}, "loss", "trained with the loss 'mean_squared_error'"),
    ],
)
def test_compile_settings_are_judged_as_they_were_during_training(
    changes: dict[str, Any], check_id: str, message: str
) -> None:
    """SGD at 0.3 set to 0.02 afterwards, or Adam recompiled as SGD(0.02): the saved model says SGD(0.02)."""
    verdict = _train_checks(make_facts(kernel={"fit_calls": [perfect_fit(**changes)]}))[check_id]
    assert not verdict.passed and message in verdict.message


def test_a_fit_that_raised_earns_no_fit_argument_points() -> None:
    raised = perfect_fit(error="ValueError: shapes (None, 10) and (None, 5) are incompatible", weights_changed=False)
    verdict = _train_checks(make_facts(kernel={"fit_calls": [raised]}))["fit_call"]
    assert not verdict.passed and "raised ValueError" in verdict.message


def test_two_fits_in_a_row_are_counted_as_one_training() -> None:
    """Two fit(epochs=10) on the same weights are the 20 epochs asked for; two fit(epochs=20) are 40."""
    first = perfect_fit(
        arguments={"batch_size": 128, "epochs": 10, "validation_split": 0.1},
        epochs_seen=10,
        completed_epochs=10,
        weights_after="half-trained",
    )
    second = replace(first, weights_before="half-trained", weights_after=WEIGHTS, history_keys=first.history_keys)
    halves = _train_checks(
        make_facts(kernel={"fit_calls": [first, second], "history": replace(make_facts().kernel.history, epochs=10)})
    )
    assert halves["history"].passed and halves["fit_call"].passed and not halves["flags"]
    twice = [perfect_fit(weights_after="trained-once"), perfect_fit(weights_before="trained-once")]
    found = _train_checks(make_facts(kernel={"fit_calls": twice}))
    assert not found["history"].passed and "40 epochs over 2 fits" in found["history"].message
    assert not found["fit_call"].passed and "40 epochs in all (20 + 20)" in found["fit_call"].message
    assert not found["flags"]  # a mistake, not faking


def test_weights_trained_before_the_fit_by_something_unrecorded_are_evidence() -> None:
    found = _train_checks(make_facts(kernel={"fit_calls": [perfect_fit(trained_before=4)]}))
    assert any("already trained when fit began (4 weight tensor(s)" in flag for flag in found["flags"])


def test_every_fit_is_checked_for_test_images_whatever_the_names() -> None:
    """An earlier fit on the test images; and one fit on `x_train` holding the test images among its samples."""
    hidden = ArrayFacts(
        True,
        "ndarray",
        [N_TRAIN, 28, 28, 1],
        "float32",
        split="train",
        train_rows=N_TRAIN - 10_000,
        test_rows=10_000,
        rows_scaled=True,
    )
    mixed = replace(make_facts().kernel.fit_calls[0].x, images="", array=hidden)
    on_test = perfect_fit(x=origin("x_test", "test_scaled", 10_000, [28, 28, 1]), weights_after="after-the-test-set")
    for calls in ([on_test, perfect_fit(weights_before="after-the-test-set")], [perfect_fit(x=mixed)]):
        flags = _train_checks(make_facts(kernel={"fit_calls": calls}))["flags"]
        assert any("to train on" in flag and "test images" in flag for flag in flags), flags


def test_a_hand_split_validation_set_is_still_the_training_set() -> None:
    """fit on 54,000 of the 60,000 training images (shuffled), the rest passed as validation data: Prepare judges
    what fit received, and nothing is flagged."""
    n = N_TRAIN * 9 // 10
    part = ArrayFacts(True, "ndarray", [n, 28, 28, 1], "float32", 0.0, 1.0, train_rows=n, test_rows=0, rows_scaled=True)
    part_labels = ArrayFacts(True, "ndarray", [n, 10], "float32", 0.0, 1.0, onehot=True, rows_labels="train")
    x = DataOrigin(["x_train"], "", "", n, [28, 28, 1], part)
    y = DataOrigin(["y_train"], "", "", n, [10], part_labels)
    variables = {"x_train": VariableFacts(True, "ndarray", "array", array=part), "y_train": None}
    grade = make_grade(facts=make_facts(variables=variables, kernel={"fit_calls": [perfect_fit(x=x, y=y)]}))
    assert points(grade, "prepare") == 10 and not grade.integrity_flags


def test_an_accuracy_far_above_the_reference_under_its_settings_is_for_review_only() -> None:
    """0.99 where the reference reached 0.92 with the same model and settings: a note, no points changed."""
    far_above = make_facts(reevaluation={"accuracy": 0.99})
    grade = make_grade(facts=far_above)
    assert grade.total == 100 and not grade.integrity_flags
    assert len(grade.review) == 1 and "far above the reference's 0.9200" in grade.review[0]
    assert not make_grade(facts=make_facts(reevaluation={"accuracy": 0.95})).review  # within the margin
    other_settings = make_facts(reevaluation={"accuracy": 0.99}, kernel={"fit_calls": [perfect_fit(optimizer="adam")]})
    assert not make_grade(facts=other_settings).review  # better settings reach more


def test_epochs_cut_short_fail_the_history_check() -> None:
    """steps_per_epoch is not passed, yet each of the 20 epochs ran one step (a callback ended it)."""
    found = _train_checks(make_facts(kernel={"fit_calls": [perfect_fit(steps_seen=20)]}))
    assert not found["history"].passed and "takes 422 steps an epoch" in found["history"].message


@pytest.mark.parametrize(
    ("trained_with", "passes"),
    [("sparse_categorical_crossentropy(from_logits=True)", True), ("mean_squared_error", False)],
)
def test_the_loss_judged_is_the_one_the_model_trained_with(trained_with: str, passes: bool) -> None:
    found = KerasObject("sparse_categorical_crossentropy", {"from_logits": True})
    facts = _with_loss(found, "saved model")
    facts = replace(
        facts, kernel=replace(facts.kernel, fit_calls=[replace(f, loss=trained_with) for f in facts.kernel.fit_calls])
    )
    verdict = kind_verdict("training.loss", facts, LOGITS_LOSS)
    assert verdict.passed is passes, verdict.message
    if not passes:
        assert verdict.message.startswith("The model was trained with the loss 'mean_squared_error'")
