"""One key for every spelling of a Keras name, and snake_case as Keras spells its functions."""

from __future__ import annotations

import pytest

from grader.kernel.keras_spelling import name_key, snake_case


@pytest.mark.parametrize(
    ("one", "other"),
    [("CategoricalCrossentropy", "categorical_crossentropy"), ("SGD", "sgd"), ("Adam", "adam")],
)
def test_every_spelling_of_a_name_has_one_key(one: str, other: str) -> None:
    assert name_key(one) == name_key(other)


def test_different_names_have_different_keys() -> None:
    assert name_key("categorical_crossentropy") != name_key("sparse_categorical_crossentropy")


@pytest.mark.parametrize(
    ("name", "snake"),
    [
        ("CategoricalCrossentropy", "categorical_crossentropy"),
        ("TopKCategoricalAccuracy", "top_k_categorical_accuracy"),
        ("LeakyReLU", "leaky_re_lu"),
        ("relu", "relu"),
    ],
)
def test_a_class_name_in_snake_case_is_its_function_name(name: str, snake: str) -> None:
    assert snake_case(name) == snake
