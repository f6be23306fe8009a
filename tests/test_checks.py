"""Scoring over hand-made facts: each check's verdict, equivalent spellings, integrity, and the rubric's role."""

from __future__ import annotations

import dataclasses

import pytest
from msgspec.structs import replace

from grader.checks import Context
from grader.facts import (
    ArrayFacts,
    CellFacts,
    CompileCall,
    CompiledFacts,
    FitCall,
    HistoryFacts,
    IntegrityFacts,
    LayerFacts,
    MetricFacts,
    ScoreFacts,
    ValidationFacts,
    ValidationRequest,
)
from tests.factories import CONTEXT, INDICES, make_facts, make_grade, rubric


def points(grade, section: str) -> float:  # noqa: ANN001
    return next(s.points for s in grade.sections if s.id == section)


def check(grade, check_id: str):  # noqa: ANN001, ANN201
    return next(c for s in grade.sections for c in s.checks if c.id == check_id)


def test_perfect_facts_score_full_marks() -> None:
    grade = make_grade()
    assert grade.total == 100 and grade.status == "graded" and not grade.integrity_flags
    assert all(c.passed and c.message for s in grade.sections for c in s.checks)


def test_unscaled_pixels_lose_only_scaling() -> None:
    raw = ArrayFacts(
        present=True,
        type_name="ndarray",
        shape=[60000, 28, 28, 1],
        dtype="float32",
        min=0,
        max=255,
        matches_raw=True,
        matches_scaled=False,
    )
    grade = make_grade(facts=make_facts(kernel={"x_train": raw}))
    assert points(grade, "prepare") == 7
    assert "divide by 255" in check(grade, "x_scaled").message


def test_missing_channel_axis_is_explained() -> None:
    flat = ArrayFacts(
        present=True,
        type_name="ndarray",
        shape=[60000, 28, 28],
        dtype="float32",
        min=0,
        max=1,
        matches_scaled=True,
        matches_raw=False,
    )
    verdict = check(make_grade(facts=make_facts(kernel={"x_train": flat})), "x_shape")
    assert not verdict.passed and "expand_dims" in verdict.message


def test_sparse_labels_fail_one_hot() -> None:
    sparse = ArrayFacts(
        present=True, type_name="ndarray", shape=[60000], dtype="uint8", min=0, max=9, onehot=False, labels_match=True
    )
    verdict = check(make_grade(facts=make_facts(kernel={"y_train": sparse})), "y_onehot")
    assert not verdict.passed and "to_categorical" in verdict.message


def test_wrong_titles_earn_partial_credit() -> None:
    facts = make_facts()
    figure = facts.kernel.figures[0]
    panels = [replace(p, title=f"[0. 1. {i}]") if i < 3 else p for i, p in enumerate(figure.panels)]
    facts = make_facts(kernel={"figures": [replace(figure, panels=panels)]})
    verdict = check(make_grade(facts=facts), "titles")
    assert verdict.points == pytest.approx(3 * 6 / 9, abs=0.01)
    assert "one-hot" in verdict.message


def test_panels_of_other_images_do_not_count() -> None:
    facts = make_facts(kernel={"indices": [i + 1 for i in INDICES]})
    assert check(make_grade(facts=facts), "pixels").points == 0


def test_relu_hidden_layer() -> None:
    layers = list(make_facts().kernel.model.layers)
    layers[1] = LayerFacts("Dense", units=128, activation="relu", output_shape=[None, 128], params=100480)
    facts = make_facts(kernel={"model": replace(make_facts().kernel.model, layers=layers)})
    grade = make_grade(facts=facts)
    assert points(grade, "build") == 40 and "'relu'" in check(grade, "hidden").message


def test_extra_layer_fails_output_exactness() -> None:
    layers = [*make_facts().kernel.model.layers, LayerFacts("Dense", units=10, activation="softmax", params=110)]
    facts = make_facts(kernel={"model": replace(make_facts().kernel.model, layers=layers, total_params=101880)})
    grade = make_grade(facts=facts)
    assert not check(grade, "output").passed and not check(grade, "params").passed


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
    fit = replace(make_facts().kernel.fit_calls[0], batch_size=None, validation_split=0.0)
    verdict = check(make_grade(facts=make_facts(kernel={"fit_calls": [fit]})), "fit_call")
    assert not verdict.passed and "Keras then uses 32" in verdict.message and "validation_split" in verdict.message


def test_old_nb_epoch_argument_is_named() -> None:
    fit = FitCall(None, 1, 0.0, 60000, 0, 0, 0, False, [], error="TypeError: nb_epoch", unknown_arguments=["nb_epoch"])
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


def test_typed_in_score_zeroes_evaluate() -> None:
    facts = make_facts(
        kernel={"score": ScoreFacts(present=True, type_name="list", value=[0.05, 0.99], from_evaluate=False)}
    )
    grade = make_grade(facts=facts)
    assert points(grade, "evaluate") == 0 and points(grade, "train") == 20
    assert any("[0.05, 0.99]" in flag for flag in grade.integrity_flags)


def test_score_disagreeing_with_reevaluation_is_flagged() -> None:
    grade = make_grade(facts=make_facts(reevaluation={"student_data_result": [1.5, 0.5]}))
    assert points(grade, "evaluate") == 0 and grade.integrity_flags


def test_accuracy_threshold_comes_from_the_context() -> None:
    facts = make_facts()
    assert check(make_grade(facts=facts, ctx=Context(0.92, 0.95)), "accuracy").passed
    low = check(make_grade(facts=facts, ctx=Context(0.93, 0.96)), "accuracy")
    assert not low.passed and "0.9600" in low.message


def test_a_dead_kernel_keeps_earlier_points() -> None:
    cells = list(make_facts().execution.cells)
    cells[4] = replace(cells[4], status="kernel_died")
    cells[5] = replace(cells[5], status="not_run")
    facts = make_facts(
        execution={"status": "kernel_died", "cells": cells},
        kernel={"fit_calls": [], "history": None, "score": ScoreFacts(present=False), "evaluate_calls": []},
        reevaluation={"ok": False, "message": "no trained model was saved"},
    )
    grade = make_grade(facts=facts)
    assert points(grade, "prepare") == 10 and points(grade, "build") == 50
    assert "cell 5 crashed the kernel" in check(grade, "fit_call").message


def test_rubric_points_and_hints_rescore_without_facts_changing() -> None:
    base = rubric()
    prepare = base.sections[0]
    moved = (
        dataclasses.replace(prepare.checks[0], points=1),
        dataclasses.replace(prepare.checks[1], points=2, hint="Use astype('float32')."),
        *prepare.checks[2:],
    )
    edited = dataclasses.replace(base, sections=(dataclasses.replace(prepare, checks=moved), *base.sections[1:]))
    bad_dtype = ArrayFacts(
        present=True,
        type_name="ndarray",
        shape=[60000, 28, 28, 1],
        dtype="uint8",
        min=0,
        max=1,
        matches_scaled=True,
        matches_raw=False,
    )
    from grader.score import score_facts

    grade = score_facts("ada", make_facts(kernel={"x_train": bad_dtype}), edited, CONTEXT)
    verdict = check(grade, "x_float")
    assert verdict.max == 2 and verdict.points == 0 and verdict.message.endswith("Use astype('float32').")


def test_model_facts_disagreeing_with_the_saved_model_zero_build() -> None:
    saved_layers = list(make_facts().kernel.model.layers)
    saved_layers[1] = LayerFacts("Dense", units=16, activation="relu", output_shape=[None, 16], params=12560)
    facts = make_facts(reevaluation={"layers": saved_layers, "total_params": 12730})
    grade = make_grade(facts=facts)
    assert points(grade, "build") == 0
    assert any("Dense(16, relu)" in flag for flag in grade.integrity_flags)


def test_matching_saved_model_is_no_evidence() -> None:
    model = make_facts().kernel.model
    saved = {"layers": list(model.layers), "total_params": model.total_params}
    grade = make_grade(facts=make_facts(reevaluation=saved))
    assert grade.total == 100 and not grade.integrity_flags


# ------------------------------------------------------------------------------------ forged training


def _fit(**changes: object) -> FitCall:
    return replace(make_facts().kernel.fit_calls[0], **changes)


def _flags(grade, section_title: str) -> list[str]:  # noqa: ANN001
    return [flag for flag in grade.integrity_flags if flag.startswith(section_title)]


def test_metric_named_like_another_is_judged_by_what_it_computes() -> None:
    """A top-k accuracy named "categorical_accuracy": 1.0 on ten classes, whatever the model predicts."""
    topk = MetricFacts("categorical_accuracy", "top_k_categorical_accuracy(k=10)", "categorical_accuracy")
    compiled = replace(make_facts().reevaluation.compiled, metrics=[topk])
    facts = make_facts(
        kernel={"score": ScoreFacts(present=True, type_name="list", value=[2.1, 1.0], from_evaluate=True)},
        execution={"stdout": "Test loss: 2.1\nTest accuracy: 1.0\n"},
        reevaluation={"compiled": compiled, "student_data_result": [2.1, 1.0], "student_data_accuracy": 0.126},
    )
    grade = make_grade(facts=facts)
    assert points(grade, "train") == 0 and points(grade, "evaluate") == 0
    assert "top_k_categorical_accuracy(k=10)" in check(grade, "metrics").message
    assert any("'categorical_accuracy' computes top_k_categorical_accuracy(k=10)" in f for f in _flags(grade, "Train"))
    assert any("0.1260" in f and "1.0000" in f for f in _flags(grade, "Evaluate"))
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


def test_accuracy_falls_back_to_the_canonical_test_set() -> None:
    """Student test arrays that are not the provisioned images are not measured; the grader's own are."""
    facts = make_facts(
        reevaluation={"student_data_accuracy": None, "accuracy": 0.5, "student_data_result": [0.2, 0.99]}
    )
    verdict = check(make_grade(facts=facts), "accuracy")
    assert not verdict.passed and "0.5000" in verdict.message


def test_made_up_history_disagrees_with_the_saved_model_on_the_validation_split() -> None:
    """A replaced fit that wrote the probe's own record, hooks and step counter: only the history's claims
    against the saved model's results on the rebuilt validation split give it away."""
    measured = ValidationFacts(0.1, 6000, {"loss": 2.31, "categorical_accuracy": 0.101})
    grade = make_grade(facts=make_facts(reevaluation={"validation": measured}))
    assert points(grade, "train") == 0
    flags = _flags(grade, "Train")
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
    fit = _fit(error="KeyboardInterrupt: ", completed_epochs=7)
    history = replace(
        make_facts().kernel.history,
        epochs=7,
        values={k: v[:7] for k, v in make_facts().kernel.history.values.items()},
    )
    facts = make_facts(kernel={"fit_calls": [fit], "history": history})
    grade = make_grade(facts=facts)
    assert not grade.integrity_flags and points(grade, "train") < 20


def test_history_that_cannot_be_checked_on_its_validation_split_is_flagged() -> None:
    facts = make_facts(reevaluation={"validation": None, "message": "evaluate on the validation split failed: boom"})
    grade = make_grade(facts=facts)
    assert points(grade, "train") == 0
    assert any("could not be evaluated on that split" in f and "boom" in f for f in _flags(grade, "Train"))


def test_weights_set_after_a_fit_on_ten_images() -> None:
    fit = _fit(n_samples=10, x_variable="", y_variable="", x_pixels="", y_labels="", weights_after="after-ten")
    grade = make_grade(facts=make_facts(kernel={"fit_calls": [fit]}))
    assert points(grade, "train") == 0
    flags = _flags(grade, "Train")
    assert any("10 sample(s)" in f and "60,000" in f for f in flags), flags
    assert any("set_weights" in f for f in flags)


def test_fit_on_the_test_set() -> None:
    fit = _fit(
        n_samples=10_000, x_variable="x_test", y_variable="y_test", x_pixels="test_scaled", y_labels="test_onehot"
    )
    grade = make_grade(facts=make_facts(kernel={"fit_calls": [fit]}))
    assert points(grade, "train") == 0
    assert any("test images (x_test)" in f for f in _flags(grade, "Train"))


@pytest.mark.parametrize(
    "changes",
    [
        {"x_variable": "", "y_variable": ""},  # the provisioned training set under other names
        {"x_pixels": "", "y_labels": "train_other"},  # x_train normalized otherwise, soft labels
        {"x_pixels": "train_raw"},  # unscaled pixels
    ],
)
def test_training_on_the_whole_training_set_in_any_form_is_no_evidence(changes: dict[str, str]) -> None:
    grade = make_grade(facts=make_facts(kernel={"fit_calls": [_fit(**changes)]}))
    assert not _flags(grade, "Train")


def test_fit_on_labels_that_are_not_the_training_labels() -> None:
    fit = _fit(y_variable="", y_labels="")
    grade = make_grade(facts=make_facts(kernel={"fit_calls": [fit]}))
    assert any("labels that are neither y_train" in f for f in _flags(grade, "Train"))


def test_step_counter_set_by_hand() -> None:
    grade = make_grade(facts=make_facts(reevaluation={"optimizer_iterations": 100_000}))
    assert points(grade, "train") == 0
    assert any("100,000 steps" in f for f in _flags(grade, "Train"))


def test_saved_model_without_an_optimizer_behind_a_history() -> None:
    grade = make_grade(facts=make_facts(reevaluation={"optimizer_iterations": None, "compiled": None}))
    assert any("never took a step" in f for f in _flags(grade, "Train"))


def test_checks_read_the_last_fit_that_trained() -> None:
    """A later fit that raised at once (a typo in an argument) changes nothing the saved model is checked on."""
    failed = FitCall(None, 1, 0.0, 60000, 0, 8440, 8440, False, [], error="TypeError: nb_epoch", weights_after="x")
    facts = make_facts(kernel={"fit_calls": [make_facts().kernel.fit_calls[0], failed]})
    assert facts.kernel.training_fit() == make_facts().kernel.fit_calls[0]
    assert not make_grade(facts=facts).integrity_flags


@pytest.mark.parametrize(
    ("changes", "expected"),
    [
        ({}, ValidationRequest(0.1, True, [28, 28, 1], True)),
        ({"x_pixels": "train_raw", "y_labels": "train_sparse"}, ValidationRequest(0.1, False, [28, 28, 1], False)),
        ({"x_pixels": ""}, None),  # not images the grader has: nothing to rebuild
        ({"y_labels": "train_other"}, None),
        ({"validation_split": 0.0}, None),
        ({"validation_split": None}, None),
    ],
)
def test_validation_request_rebuilds_only_the_provisioned_training_set(
    changes: dict[str, object], expected: ValidationRequest | None
) -> None:
    assert ValidationRequest.of(_fit(**changes)) == expected
