"""Evaluation checks over hand-made facts: the test score however it was stored, its agreement with the
grader's re-evaluation, the accuracy threshold, and a typed-in or mismatched score."""

from __future__ import annotations

from typing import Any

import pytest
from msgspec.structs import replace

from grader.checks import Context
from grader.facts import DataOrigin, VariableFacts
from tests.checks.conftest import kind_verdict, section_flags
from tests.factories import (
    N_TEST,
    SCORE,
    WEIGHTS,
    X_TRAIN,
    Y_TRAIN,
    check,
    make_facts,
    make_grade,
    origin,
    points,
)


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
    assert any("re-evaluating the saved model gives" in flag for flag in section_flags(grade, "Evaluate"))


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


def test_accuracy_threshold_comes_from_the_context() -> None:
    facts = make_facts()
    assert check(make_grade(facts=facts, ctx=Context(0.92, 0.95)), "accuracy").passed
    low = check(make_grade(facts=facts, ctx=Context(0.93, 0.96)), "accuracy")
    assert not low.passed and "0.9600" in low.message


def test_accuracy_falls_back_to_the_canonical_test_set() -> None:
    """Student test arrays that are not the provisioned images are not measured; the grader's own are."""
    facts = make_facts(
        reevaluation={"student_data_accuracy": None, "accuracy": 0.5, "student_data_result": [0.2, 0.99]}
    )
    verdict = check(make_grade(facts=facts), "accuracy")
    assert not verdict.passed and "0.5000" in verdict.message


def test_an_evaluate_on_other_data_is_not_the_test_score() -> None:
    on_train = replace(make_facts().kernel.evaluate_calls[0], x=X_TRAIN, y=Y_TRAIN)
    grade = make_grade(facts=make_facts(variables={"score": None}, kernel={"evaluate_calls": [on_train]}))
    assert "not called on the test data: call model.evaluate(x_test, y_test)" in check(grade, "score").message


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


def test_without_a_score_role_no_message_asks_to_store_one() -> None:
    facts = make_facts({"score": None}, kernel={"evaluate_calls": []})
    unnamed = kind_verdict("evaluation.score", facts, {})
    assert not unnamed.passed and "store" not in unnamed.message and "was never called" in unnamed.message
    named = kind_verdict("evaluation.score", facts, {"variables": {"score": "score"}})
    assert "store score = model.evaluate" in named.message
