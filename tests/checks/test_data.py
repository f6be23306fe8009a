"""Data checks over hand-made facts: image shape, dtype and scaling, one-hot or integer labels, and names."""

from __future__ import annotations

from typing import Any

import pytest
from msgspec.structs import replace

from grader.checks import KINDS, Context
from grader.checks.data import Names
from grader.facts import VariableFacts
from tests.checks.conftest import kind_verdict
from tests.factories import (
    N_TRAIN,
    check,
    images,
    labels,
    make_facts,
    make_grade,
    points,
    rubric,
)


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


def test_a_score_unpacked_into_two_names_is_the_test_score() -> None:
    """`loss, acc = model.evaluate(x_test, y_test)`: no `score` variable, but evaluate's result was recorded."""
    facts = make_facts(variables={"score": None})
    grade = make_grade(facts=facts)
    failed = [c.id for s in grade.sections for c in s.checks if not c.passed]
    assert points(grade, "evaluate") == 9 and failed == ["names"] and not grade.integrity_flags
    ctx = Context(0.89, 0.92, rubric().assignment)
    verdict = KINDS["data.names"].run(facts, Names(roles=["score"]), ctx)
    assert not verdict.passed and "The test score was not stored as `score`" in verdict.message


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
    verdict = kind_verdict("data.labels_integer", make_facts(_integer_labels(dtype)), {})
    assert verdict.passed, verdict.message


def test_one_hot_float_or_shuffled_labels_are_not_integer_labels() -> None:
    onehot = kind_verdict("data.labels_integer", make_facts(), {})
    assert not onehot.passed and "These are one-hot rows" in onehot.message
    floats = kind_verdict("data.labels_integer", make_facts(_integer_labels("float32")), {})
    assert not floats.passed and "float32 values, expected integer class ids" in floats.message
    shuffled = kind_verdict("data.labels_integer", make_facts(_integer_labels(labels_match=False)), {})
    assert not shuffled.passed
