"""Keras's names, read without importing Keras."""

from __future__ import annotations

import importlib.util

import pytest

from grader.keras_api import keras_names


@pytest.mark.skipif(importlib.util.find_spec("keras") is None, reason="Keras is not installed")
def test_the_names_are_what_keras_offers_aliases_included() -> None:
    layers = keras_names("layers")
    assert {"Dense", "Flatten", "MaxPool2D", "MaxPooling2D"} <= layers
    assert "Dence" not in layers
    assert {"SGD", "Adam"} <= keras_names("optimizers")
    assert {"mnist", "fashion_mnist"} <= keras_names("datasets")
    assert not any(name.startswith("_") for name in keras_names("losses"))
