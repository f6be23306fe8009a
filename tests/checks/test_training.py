"""Scoring over hand-made facts: each check's verdict, equivalent spellings, integrity, and the rubric's role."""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from msgspec.structs import replace

from grader.checks import KINDS, Context
from grader.checks.data import Names
from grader.checks.figures import Titles
from grader.facts import (
    CellFacts,
    CompileCall,
    CompiledFacts,
    DataOrigin,
    Facts,
    FitCall,
    FoundArray,
    HistoryFacts,
    IntegrityFacts,
    KerasObject,
    LayerFacts,
    MetricFacts,
    ValidationFacts,
    ValidationRequest,
    VariableFacts,
)
from grader.rubric.load import load_rubric
from grader.rubric.model import RubricError
from grader.score import score_facts
from tests.conftest import ROOT
from tests.factories import (
    CONTEXT,
    INDICES,
    N_TEST,
    N_TRAIN,
    SCORE,
    WEIGHTS,
    dense,
    images,
    labels,
    make_facts,
    make_grade,
    origin,
    plain,
    rubric,
)


def points(grade, section: str) -> float:  # noqa: ANN001
    return next(s.points for s in grade.sections if s.id == section)


def check(grade, check_id: str):  # noqa: ANN001, ANN201
    return next(c for s in grade.sections for c in s.checks if c.id == check_id)


def test_perfect_facts_score_full_marks() -> None:
    grade = make_grade()
    assert grade.total == 100 and grade.status == "graded" and not grade.integrity_flags
    assert all(c.passed and c.message for s in grade.sections for c in s.checks)


def test_unscaled_pixels_lose_only_scaling() -> None:
    grade = make_grade(facts=make_facts(variables={"x_train": images("train", raw=True)}))
    assert points(grade, "prepare") == 7
    assert "divide by 255" in check(grade, "x_scaled").message


def test_missing_channel_axis_is_explained() -> None:
    flat = images("train", shape=[60000, 28, 28])
    verdict = check(make_grade(facts=make_facts(variables={"x_train": flat})), "x_shape")
    assert not verdict.passed and "expand_dims" in verdict.message


def test_sparse_labels_fail_one_hot() -> None:
    sparse = labels("train", shape=[60000], onehot=False)
    verdict = check(make_grade(facts=make_facts(variables={"y_train": sparse})), "y_onehot")
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
    """The panels show training images, but not the ones the notebook's `indices` picked."""
    shifted = VariableFacts(True, "ndarray", value=[i + 1 for i in INDICES])
    facts = make_facts(variables={"indices": shifted})
    assert check(make_grade(facts=facts), "pixels").points == 0


def test_relu_hidden_layer() -> None:
    layers = list(make_facts().kernel.model.layers)
    layers[1] = dense(128, "relu", 100480)
    facts = make_facts(kernel={"model": replace(make_facts().kernel.model, layers=layers)})
    grade = make_grade(facts=facts)
    assert points(grade, "build") == 40 and "'relu'" in check(grade, "hidden").message


def test_extra_layer_fails_output_exactness() -> None:
    layers = [*make_facts().kernel.model.layers, dense(10, "softmax", 110)]
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


def test_typed_in_score_zeroes_evaluate() -> None:
    typed = VariableFacts(True, "list", "[0.05, 0.99]", value=[0.05, 0.99], from_evaluate=False)
    grade = make_grade(facts=make_facts(variables={"score": typed}))
    assert points(grade, "evaluate") == 0 and points(grade, "train") == 20
    assert any("[0.05, 0.99]" in flag for flag in grade.integrity_flags)


def test_score_disagreeing_with_reevaluation_is_flagged() -> None:
    grade = make_grade(facts=make_facts(reevaluation={"student_data_result": [1.5, 0.5]}))
    assert points(grade, "evaluate") == 0 and grade.integrity_flags


def _evaluated_on(
    result: list[float], weights: str = "", x: DataOrigin | None = None, y: DataOrigin | None = None
) -> dict[str, Any]:
    """Kernel facts of a notebook whose last evaluate, on `x` and `y` (by default the provisioned test set),
    returned `result`, stored as `score`."""
    x = x or origin("x_test", "test_scaled", N_TEST, [28, 28, 1])
    y = y or origin("y_test", "test_onehot", N_TEST, [10])
    call = replace(make_facts().kernel.evaluate_calls[0], x=x, y=y, result=result, weights=weights)
    return {"kernel": {"evaluate_calls": [call]}, "variables": {"score": _score(result)}}


def _score(result: list[float], from_evaluate: bool = True) -> VariableFacts:
    return VariableFacts(True, "list", str(result), value=result, from_evaluate=from_evaluate)


def test_a_score_on_arrays_that_are_not_the_test_set_is_not_vouched_for() -> None:
    """x_test and y_test replaced by the test images the model gets right: evaluate on them gives 1.0, and the
    re-evaluation on those same arrays agrees; the provisioned test set does not."""
    swapped = _evaluated_on([0.01, 1.0], x=origin("x_test", "", 250, [28, 28, 1]), y=origin("y_test", "", 250, [10]))
    facts = make_facts(
        **swapped,
        execution={"stdout": "Test loss: 0.01\nTest accuracy: 1.0\n"},
        reevaluation={"student_data_result": [0.01, 1.0], "student_data_accuracy": None, "test_result": list(SCORE)},
    )
    grade = make_grade(facts=facts)
    matches = check(grade, "matches")
    assert not matches.passed and "not on the test set" in matches.message and "250 images" in matches.message
    assert not grade.integrity_flags


def test_a_score_of_other_weights_is_no_evidence() -> None:
    """Another model, or this one before more training: the score differs, the re-evaluation does not repeat it."""
    later = _evaluated_on([0.5, 0.85], weights="before-the-second-fit")
    grade = make_grade(facts=make_facts(**later, execution={"stdout": "Test loss: 0.5\nTest accuracy: 0.85\n"}))
    matches = check(grade, "matches")
    assert not matches.passed and "weights differ" in matches.message
    assert not grade.integrity_flags


def test_the_same_weights_on_the_same_data_disagreeing_is_evidence() -> None:
    grade = make_grade(facts=make_facts(**_evaluated_on([0.05, 0.99], weights=WEIGHTS)))
    assert any("re-evaluating the saved model gives" in flag for flag in _flags(grade, "Evaluate"))


@pytest.mark.parametrize(("claimed", "passed"), [(SCORE[1], True), (SCORE[1] - 0.05, False)])
def test_a_metric_the_grader_cannot_run_is_judged_on_its_own_count(claimed: float, passed: bool) -> None:
    """A compiled metric of the notebook's own: evaluate's results are not recomputed, the accuracy is counted."""
    facts = make_facts(
        **_evaluated_on([SCORE[0], claimed]),
        reevaluation={
            "student_data_result": None,
            "test_result": None,
            "unrestored": ["my_metric"],
            "message": "the compiled my_metric is the notebook's own code",
        },
    )
    grade = make_grade(facts=facts)
    assert check(grade, "matches").passed is passed and not grade.integrity_flags


def test_a_score_stored_rounded_is_not_typed_in() -> None:
    rounded = [round(SCORE[0], 2), round(SCORE[1], 2)]
    grade = make_grade(facts=make_facts(variables={"score": _score(rounded, from_evaluate=False)}))
    assert not grade.integrity_flags


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
        variables={"score": None},
        kernel={"fit_calls": [], "history": None, "evaluate_calls": []},
        reevaluation={"ok": False, "message": "no trained model was saved"},
    )
    grade = make_grade(facts=facts)
    assert points(grade, "prepare") == 10 and points(grade, "build") == 50
    assert "cell 5 crashed the kernel" in check(grade, "fit_call").message


def test_rubric_points_and_hints_rescore_without_facts_changing() -> None:
    base = rubric()
    prepare = base.sections[0]
    changes: dict[str, dict[str, Any]] = {
        "names": {"points": 0},
        "x_float": {"points": 2, "hint": "Use astype('float32')."},
    }
    moved = tuple(dataclasses.replace(c, **changes.get(c.id, {})) for c in prepare.checks)
    edited = dataclasses.replace(base, sections=(dataclasses.replace(prepare, checks=moved), *base.sections[1:]))
    bad_dtype = images("train", dtype="uint8")
    grade = score_facts("ada", make_facts(variables={"x_train": bad_dtype}), edited, CONTEXT)
    verdict = check(grade, "x_float")
    assert verdict.max == 2 and verdict.points == 0 and verdict.message.endswith("Use astype('float32').")


def test_model_facts_disagreeing_with_the_saved_model_zero_build() -> None:
    saved_layers = list(make_facts().kernel.model.layers)
    saved_layers[1] = dense(16, "relu", 12560)
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


def test_history_that_cannot_be_checked_on_its_validation_split_is_not_verified_and_not_accused() -> None:
    """The grader failing to evaluate the split is no evidence of faking; the history just is not verified."""
    facts = make_facts(reevaluation={"validation": None, "message": "evaluate on the validation split failed: boom"})
    grade = make_grade(facts=facts)
    assert not grade.integrity_flags and points(grade, "train") == 17
    history = check(grade, "history")
    assert not history.passed and "Not verified" in history.message and "boom" in history.message


def test_weights_set_after_a_fit_on_ten_images() -> None:
    fit = _fit(x=DataOrigin(n_samples=10), y=DataOrigin(n_samples=10), weights_after="after-ten")
    grade = make_grade(facts=make_facts(kernel={"fit_calls": [fit]}))
    assert points(grade, "train") == 0
    flags = _flags(grade, "Train")
    assert any("10 sample(s)" in f and "60,000" in f for f in flags), flags
    assert any("set_weights" in f for f in flags)


def test_fit_on_the_test_set() -> None:
    fit = _fit(x=origin("x_test", "test_scaled", 10_000, [28, 28, 1]), y=origin("y_test", "test_onehot", 10_000, [10]))
    grade = make_grade(facts=make_facts(kernel={"fit_calls": [fit]}))
    assert points(grade, "train") == 0
    assert any("test images (x_test)" in f for f in _flags(grade, "Train"))


X_TRAIN = origin("x_train", "train_scaled", N_TRAIN, [28, 28, 1])
Y_TRAIN = origin("y_train", "train_onehot", N_TRAIN, [10])


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
    grade = make_grade(facts=make_facts(kernel={"fit_calls": [_fit(x=x, y=y)]}))
    assert not _flags(grade, "Train")


def test_fit_on_labels_that_are_not_the_training_labels() -> None:
    fit = _fit(y=replace(Y_TRAIN, names=[], labels=""))
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
    failed = _failed_fit(iterations_before=8440, iterations_after=8440, weights_after="x")
    facts = make_facts(kernel={"fit_calls": [make_facts().kernel.fit_calls[0], failed]})
    assert facts.kernel.training_fit() == make_facts().kernel.fit_calls[0]
    assert not make_grade(facts=facts).integrity_flags


@pytest.mark.parametrize(
    ("changes", "expected"),
    [
        ({}, ValidationRequest(0.1, True, [28, 28, 1], True)),
        (
            {"x": replace(X_TRAIN, images="train_raw"), "y": replace(Y_TRAIN, labels="train_sparse")},
            ValidationRequest(0.1, False, [28, 28, 1], False),
        ),
        ({"x": replace(X_TRAIN, images="")}, None),  # not images the grader has: nothing to rebuild
        ({"y": replace(Y_TRAIN, labels="train_other")}, None),
        ({"arguments": {"batch_size": 128, "epochs": 20, "validation_split": 0.0}}, None),
        ({"arguments": {"batch_size": 128, "epochs": 20}}, None),
    ],
)
def test_validation_request_rebuilds_only_the_provisioned_training_set(
    changes: dict[str, object], expected: ValidationRequest | None
) -> None:
    assert ValidationRequest.of(_fit(**changes)) == expected


# ------------------------------------------------------------------------------------ found by what they are


RENAMED = {"x_train": "X_train", "y_train": "Y_train", "x_test": "X_test", "y_test": "Y_test"}


def renamed_arrays() -> Facts:
    """The perfect run with its arrays called X_train, Y_train, X_test, Y_test."""
    perfect = make_facts()
    kernel = perfect.kernel
    arrays = [
        FoundArray([RENAMED[name]], variable.array)
        for name, variable in kernel.variables.items()
        if name in RENAMED and variable.array
    ]
    fit, evaluate = kernel.fit_calls[0], kernel.evaluate_calls[0]

    def renamed(data: DataOrigin) -> DataOrigin:
        return replace(data, names=[RENAMED[n] for n in data.names])

    return make_facts(
        variables=dict.fromkeys(RENAMED),
        kernel={
            "arrays": arrays,
            "fit_calls": [replace(fit, x=renamed(fit.x), y=renamed(fit.y))],
            "evaluate_calls": [replace(evaluate, x=renamed(evaluate.x), y=renamed(evaluate.y))],
        },
    )


def test_arrays_under_other_names_pass_the_data_checks_and_lose_only_the_names() -> None:
    assert make_grade(facts=make_facts()).total == 100
    grade = make_grade(facts=renamed_arrays())
    failed = [c for s in grade.sections for c in s.checks if not c.passed]
    assert [c.id for c in failed] == ["names"] and grade.total == 99 and not grade.integrity_flags
    assert "`X_train` holds the training images; the assignment calls it `x_train`" in failed[0].message
    assert "`Y_test` holds the test labels; the assignment calls it `y_test`" in failed[0].message


def test_an_array_found_nowhere_is_reported_under_the_rubric_name() -> None:
    grade = make_grade(facts=make_facts(variables={"x_train": None}))
    for check_id in ("x_shape", "x_float", "x_scaled", "printed"):
        message = check(grade, check_id).message
        assert "`x_train` is not defined" in message, message
        assert not re.search(r"`x_train` is [;:.]", message), message


def test_a_value_that_is_not_an_array_is_named_as_what_it_is() -> None:
    listed = VariableFacts(True, "list", "[[0, 1], ...]")
    message = check(make_grade(facts=make_facts(variables={"x_train": listed})), "x_float").message
    assert "`x_train` is a list, not an array" in message


def test_a_score_unpacked_into_two_names_is_the_test_score() -> None:
    """`loss, acc = model.evaluate(x_test, y_test)`: no `score` variable, but evaluate's result was recorded."""
    facts = make_facts(variables={"score": None})
    grade = make_grade(facts=facts)
    failed = [c.id for s in grade.sections for c in s.checks if not c.passed]
    assert points(grade, "evaluate") == 9 and failed == ["names"] and not grade.integrity_flags
    ctx = Context(0.89, 0.92, rubric().assignment)
    verdict = KINDS["data.names"].run(facts, Names(roles=["score"]), ctx)
    assert not verdict.passed and "The test score was not stored as `score`" in verdict.message


def test_an_evaluate_on_other_data_is_not_the_test_score() -> None:
    on_train = replace(make_facts().kernel.evaluate_calls[0], x=X_TRAIN, y=Y_TRAIN)
    grade = make_grade(facts=make_facts(variables={"score": None}, kernel={"evaluate_calls": [on_train]}))
    assert "not called on the test data: call model.evaluate(x_test, y_test)" in check(grade, "score").message


# ------------------------------------------------------------------------------------ titles


def titled(form: Callable[[int], str]) -> Facts:
    figure = make_facts().kernel.figures[0]
    panels = [replace(p, title=form(p.true_label or 0)) for p in figure.panels]
    return make_facts(kernel={"figures": [replace(figure, panels=panels)]})


@pytest.mark.parametrize(
    ("form", "passed"),
    [
        (str, True),
        (lambda label: f"Class {label}", True),
        (lambda label: f"label: {label}", True),
        (lambda label: f"Label = {label}", True),
        (lambda label: f"Digit {label} (index 4711)", True),
        (lambda label: str([float(i == label) for i in range(10)]), False),  # a one-hot vector
        (lambda label: f"Class {(label + 1) % 10}", False),  # a wrong label
        (lambda label: f"{label} or {(label + 1) % 10}", False),  # not one label
        (lambda label: f"{label}.0", False),
    ],
)
def test_a_title_states_the_label_with_or_without_words(form: Callable[[int], str], passed: bool) -> None:
    assert check(make_grade(facts=titled(form)), "titles").passed is passed


def test_extra_words_earn_the_share_the_rubric_gives() -> None:
    ctx = Context(0.89, 0.92, rubric().assignment)
    run = KINDS["figures.titles"].run
    wordy = run(titled(lambda label: f"Class {label}"), Titles(count=9, extra_words=0.5), ctx)
    assert not wordy.passed and wordy.earned == 0.5 and "9 with extra words, worth 0.5 each" in wordy.message
    assert run(titled(str), Titles(count=9, extra_words=0.5), ctx).passed
    onehot = run(titled(lambda label: f"[0. 1. {label}.]"), Titles(count=9), ctx)
    assert onehot.earned == 0 and "one-hot vector" in onehot.message


def test_panels_picked_by_another_variable_are_training_images() -> None:
    """No `indices` variable: the panels are judged by their pixels, and only the indices check fails."""
    grade = make_grade(facts=make_facts(variables={"indices": None}))
    assert check(grade, "pixels").passed and not check(grade, "indices").passed
    assert points(grade, "visualize") == 8


# ------------------------------------------------------------------------------------ a convnet


CONVNET_RUBRIC = """
model:
  input_shape: [28, 28, 1]
  layers:
    - Conv2D: {filters: 32, kernel_size: 3, activation: relu}
    - MaxPooling2D: {pool_size: 2}
    - Conv2D: {filters: 64, kernel_size: [3, 3], activation: ReLU}
    - MaxPool2D: {pool_size: 2}
    - Flatten
    - Dropout: {rate: 0.5}
    - Dense: {units: 10, activation: softmax}
sections:
  build:
    points: 10
    integrity: [model]
    checks:
      layers: {kind: model.layers, points: 4, title: "The convnet's layers"}
      convs: {kind: model.layers, indices: [0, 2], points: 2, title: "Two convolutions"}
      output: {kind: model.layer, index: 6, last: true, points: 2, title: "Dense(10, softmax) last"}
      params: {kind: model.params, points: 2, title: "34,826 parameters"}
"""


def conv(filters: int, kernel: int, params: int) -> LayerFacts:
    config = {"filters": filters, "kernel_size": [kernel, kernel], "strides": [1, 1], "padding": "valid"}
    return LayerFacts("Conv2D", {**config, "activation": "relu", "use_bias": True}, params=params)


def pool() -> LayerFacts:
    return LayerFacts("MaxPooling2D", {"pool_size": [2, 2], "strides": [2, 2], "padding": "valid"})


def convnet(first: LayerFacts, total: int) -> Facts:
    layers = [
        first,
        pool(),
        conv(64, 3, 18_496),
        pool(),
        LayerFacts("Flatten", {}),
        LayerFacts("Dropout", {"rate": 0.5}),
        dense(10, "softmax", 16_010),
    ]
    model = replace(make_facts().kernel.model, layers=layers, total_params=total)
    return make_facts(kernel={"model": model}, reevaluation={"layers": layers, "total_params": total})


def test_a_convnet_is_checked_layer_by_layer(tmp_path: Path) -> None:
    (tmp_path / "rubric.yaml").write_text(CONVNET_RUBRIC, encoding="utf-8")
    cnn = load_rubric(tmp_path / "rubric.yaml")
    assert score_facts("ada", convnet(conv(32, 3, 320), 34_826), cnn, CONTEXT).total == 10
    grade = score_facts("bo", convnet(conv(16, 5, 416), 34_922), cnn, CONTEXT)
    layers, convs = check(grade, "layers"), check(grade, "convs")
    assert layers.points == pytest.approx(4 * 6 / 7, abs=0.01) and convs.points == 1
    assert "the first layer has 16 filters, expected 32; it has kernel_size (5, 5), expected 3" in layers.message
    assert check(grade, "output").passed and not check(grade, "params").passed
    assert "18,496 in the third layer, Conv2D(64, (3, 3), ReLU)" in check(grade, "params").message


def test_a_missing_layer_costs_that_layer_only(tmp_path: Path) -> None:
    """No Dropout: the layers after it are still paired with the declared ones."""
    (tmp_path / "rubric.yaml").write_text(CONVNET_RUBRIC, encoding="utf-8")
    cnn = load_rubric(tmp_path / "rubric.yaml")
    facts = convnet(conv(32, 3, 320), 34_826)
    layers = [layer for layer in facts.kernel.model.layers if layer.class_name != "Dropout"]
    model = replace(facts.kernel.model, layers=layers)
    saved = {"layers": layers, "total_params": 34_826}
    grade = score_facts("eve", make_facts(kernel={"model": model}, reevaluation=saved), cnn, CONTEXT)
    assert check(grade, "layers").points == pytest.approx(4 * 6 / 7, abs=0.01)
    assert "no layer is Dropout(0.5)" in check(grade, "layers").message
    assert check(grade, "output").passed


def test_a_model_on_flattened_input_is_judged_by_its_layers_not_their_positions() -> None:
    """Input(784) -> Dense(128, sigmoid) -> Dense(10, softmax): no Flatten, the rest as declared."""
    layers = [dense(128, "sigmoid", 100_480), dense(10, "softmax", 1_290)]
    model = replace(make_facts().kernel.model, layers=layers, input_shape=[None, 784])
    saved = {"layers": layers, "total_params": 101_770}
    grade = make_grade(facts=make_facts(kernel={"model": model}, reevaluation=saved))
    assert [check(grade, c).passed for c in ("flatten", "hidden", "output", "params")] == [False, True, True, True]
    assert "no layer like Flatten" in check(grade, "flatten").message


def test_a_layer_between_the_declared_ones_fails_the_last_layer() -> None:
    layers = list(make_facts().kernel.model.layers)
    layers.insert(2, dense(64, "sigmoid", 8_256))
    model = replace(make_facts().kernel.model, layers=layers, total_params=110_026)
    saved = {"layers": layers, "total_params": 110_026}
    grade = make_grade(facts=make_facts(kernel={"model": model}, reevaluation=saved))
    assert check(grade, "hidden").passed and not check(grade, "output").passed


# ------------------------------------------------------------------------------------ messages


def test_messages_carry_no_terminal_control_codes() -> None:
    cells = list(make_facts().execution.cells)
    cells[1] = replace(
        cells[1], status="error", error_name="\x1b[0;31mNameError\x1b[0m", error_value="\x1b[1mboom\x1b[0m"
    )
    facts = make_facts(
        variables={"x_train": None},
        execution={"cells": cells},
        reevaluation={"validation": None, "message": "\x1b[31mevaluate failed\x1b[0m"},
    )
    grade = make_grade(facts=facts)
    texts = [c.message for s in grade.sections for c in s.checks] + grade.integrity_flags
    assert not any("\x1b" in text for text in texts)
    assert "Likely cause: cell 2 raised NameError: boom" in check(grade, "x_shape").message
    assert "(evaluate failed)" in check(grade, "history").message


def test_a_wrong_value_is_not_blamed_on_a_cell_that_ran_out_of_time() -> None:
    cells = list(make_facts().execution.cells)
    cells[4] = replace(cells[4], status="timeout")
    wrong = check(make_grade(execution={"cells": cells}, variables={"epochs": plain(200)}), "settings")
    assert wrong.message == "`epochs` is 200, expected 20."
    absent = check(make_grade(execution={"cells": cells}, variables={"epochs": None}), "settings")
    assert "`epochs` is not defined: set epochs = 20." in absent.message
    assert "Likely cause: cell 5 ran out of time." in absent.message


def test_a_score_from_an_evaluate_on_the_training_set_is_a_mistake_not_a_forgery() -> None:
    on_train = replace(make_facts().kernel.evaluate_calls[0], x=X_TRAIN, y=Y_TRAIN, result=[0.1, 0.97])
    honest = VariableFacts(True, "list", "[0.1, 0.97]", value=[0.1, 0.97], from_evaluate=True)
    facts = make_facts(variables={"score": honest}, kernel={"evaluate_calls": [on_train]})
    grade = make_grade(facts=facts)
    assert not grade.integrity_flags and not check(grade, "score").passed and check(grade, "accuracy").passed


def test_a_score_rounded_from_evaluate_s_result_is_no_evidence() -> None:
    loss, accuracy = make_facts().kernel.evaluate_calls[0].result or [0.0, 0.0]
    value = [round(loss, 4), round(accuracy, 4)]
    rounded = VariableFacts(True, "list", str(value), value=value, from_evaluate=False)
    facts = make_facts(variables={"score": rounded})
    grade = make_grade(facts=facts)
    assert not grade.integrity_flags and points(grade, "evaluate") == 10


def test_the_test_accuracy_printed_as_a_percentage_counts() -> None:
    cells = list(make_facts().execution.cells)
    loss, accuracy = make_facts().kernel.evaluate_calls[0].result or [0.0, 0.0]
    facts = make_facts(execution={"cells": cells, "stdout": f"loss {loss}\naccuracy: {accuracy:.2%}\n"})
    evaluate = next(s for s in make_grade(facts=facts).sections if s.id == "evaluate")
    assert next(c for c in evaluate.checks if c.id == "printed").passed


def test_training_images_renamed_x_test_are_not_the_test_score() -> None:
    renamed = replace(X_TRAIN, names=["x_test"])
    on_train = replace(make_facts().kernel.evaluate_calls[0], x=renamed, y=replace(Y_TRAIN, names=["y_test"]))
    grade = make_grade(facts=make_facts(kernel={"evaluate_calls": [on_train]}))
    assert not check(grade, "score").passed


# ------------------------------------------------------------------------------ issue 19: a rubric's own forms


def _verdict(kind: str, facts: Facts, assignment: dict[str, Any], **params: Any):  # noqa: ANN202
    """One check kind's verdict under an assignment written as a rubric writes it."""
    from grader.assignment import Assignment

    declared = Assignment.model_validate(assignment)
    validated = KINDS[kind].params.model_validate(params)
    assert validated.check_assignment(declared) is None
    return KINDS[kind].run(facts, validated, dataclasses.replace(CONTEXT, assignment=declared))


LOGITS_LOSS = {"compile": {"loss": {"SparseCategoricalCrossentropy": {"from_logits": True}}}}


def _with_loss(found: KerasObject, source: str) -> Facts:
    """Facts whose loss is `found`: in the saved model's compile config, or only in the kernel's record."""
    if source == "saved model":
        compiled = replace(make_facts().reevaluation.compiled, loss="x", loss_object=found)
        return make_facts(reevaluation={"compiled": compiled})
    call = replace(make_facts().kernel.compile_calls[0], loss="x", loss_object=found)
    return make_facts(kernel={"compile_calls": [call]}, reevaluation={"compiled": None})


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
    verdict = _verdict("training.loss", _with_loss(found, source), LOGITS_LOSS)
    assert verdict.passed is passes
    assert "expected 'sparse_categorical_crossentropy'" not in verdict.message
    if not passes and found.name.startswith("sparse"):
        assert verdict.message == "The loss sparse_categorical_crossentropy has from_logits False, expected True."
    if found.name.startswith("categorical"):  # one-hot labels' loss where the labels should stay integers
        assert "expected SparseCategoricalCrossentropy(from_logits=True)" in verdict.message
        assert "the labels should stay integer class ids" in verdict.message


def test_a_bare_loss_name_accepts_any_settings() -> None:
    found = KerasObject("sparse_categorical_crossentropy", {"from_logits": True})
    verdict = _verdict(
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
    assert _verdict("training.optimizer", facts, declared).passed
    assert _verdict("training.metrics", facts, declared).passed
    declared["compile"]["metrics"] = [{"SparseTopKCategoricalAccuracy": {"k": 5}}]
    verdict = _verdict("training.metrics", facts, declared)
    assert not verdict.passed and "SparseTopKCategoricalAccuracy(k=5)" in verdict.message


def test_a_rubric_loss_with_settings_loads_and_a_misspelt_class_is_named(tmp_path: Path) -> None:
    text = (ROOT / "examples" / "quickstart" / "rubric.yaml").read_text()
    assert load_rubric(ROOT / "examples" / "quickstart" / "rubric.yaml").assignment.compile.loss is not None
    (tmp_path / "rubric.yaml").write_text(
        text.replace("{SparseCategoricalCrossentropy:", "{SparseCategoricalCrosentropy:")
    )
    with pytest.raises(RubricError, match=r"compile\.loss .*did you mean 'sparse_categorical_crossentropy'"):
        load_rubric(tmp_path / "rubric.yaml")


def _integer_labels(dtype: str = "uint8", **changes: Any) -> dict[str, VariableFacts | None]:
    found = {}
    for split, name in (("train", "y_train"), ("test", "y_test")):
        variable = labels(split, shape=[N_TRAIN if split == "train" else make_facts().dataset.n_test], onehot=False)
        array = variable.array
        assert array is not None
        found[name] = replace(variable, array=replace(array, dtype=dtype, **changes))
    return found


@pytest.mark.parametrize("dtype", ["uint8", "int64", "int32"])
def test_integer_labels_of_any_integer_dtype_pass(dtype: str) -> None:
    verdict = _verdict("data.labels_integer", make_facts(_integer_labels(dtype)), {})
    assert verdict.passed, verdict.message


def test_one_hot_float_or_shuffled_labels_are_not_integer_labels() -> None:
    onehot = _verdict("data.labels_integer", make_facts(), {})
    assert not onehot.passed and "These are one-hot rows" in onehot.message
    floats = _verdict("data.labels_integer", make_facts(_integer_labels("float32")), {})
    assert not floats.passed and "float32 values, expected integer class ids" in floats.message
    shuffled = _verdict("data.labels_integer", make_facts(_integer_labels(labels_match=False)), {})
    assert not shuffled.passed


OUTPUT_LAYER = {"model": {"layers": [{"Dense": {"units": 10, "activation": None}}]}}


@pytest.mark.parametrize(("activation", "passes"), [("linear", True), ("softmax", False)])
def test_activation_null_is_keras_s_default(activation: str, passes: bool) -> None:
    model = replace(make_facts().kernel.model, layers=[dense(10, activation, 7850)])
    verdict = _verdict("model.layers", make_facts(kernel={"model": model}), OUTPUT_LAYER)
    assert verdict.passed is passes
    assert "'linear'" not in verdict.message
    if not passes:
        assert "has activation 'softmax', expected no activation" in verdict.message


def test_without_a_score_role_no_message_asks_to_store_one() -> None:
    facts = make_facts({"score": None}, kernel={"evaluate_calls": []})
    unnamed = _verdict("evaluation.score", facts, {})
    assert not unnamed.passed and "store" not in unnamed.message and "was never called" in unnamed.message
    named = _verdict("evaluation.score", facts, {"variables": {"score": "score"}})
    assert "store score = model.evaluate" in named.message
