"""Keras's names, read without importing Keras, and one key for every spelling of a name."""

from __future__ import annotations

import importlib.util

import pytest

from grader.keras_api import keras_names, name_key


@pytest.mark.parametrize(
    ("one", "other"),
    [("CategoricalCrossentropy", "categorical_crossentropy"), ("SGD", "sgd"), ("Adam", "adam")],
)
def test_every_spelling_of_a_name_has_one_key(one: str, other: str) -> None:
    assert name_key(one) == name_key(other)


def test_different_names_have_different_keys() -> None:
    assert name_key("categorical_crossentropy") != name_key("sparse_categorical_crossentropy")


@pytest.mark.skipif(importlib.util.find_spec("keras") is None, reason="Keras is not installed")
def test_the_names_are_what_keras_offers_aliases_included() -> None:
    layers = keras_names("layers")
    assert {"Dense", "Flatten", "MaxPool2D", "MaxPooling2D"} <= layers
    assert "Dence" not in layers
    assert {"SGD", "Adam"} <= keras_names("optimizers")
    assert {"mnist", "fashion_mnist"} <= keras_names("datasets")
    assert not any(name.startswith("_") for name in keras_names("losses"))
