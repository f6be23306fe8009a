"""A loss or metric named by what it computes, its class and configuration, never by its display name."""

from __future__ import annotations

import keras
import pytest

from grader.kernel.keras_identity import identity, resolved_identity


class CategoricalAccuracy(keras.metrics.TopKCategoricalAccuracy):
    """A notebook's own class under the name of Keras's."""


@pytest.mark.parametrize(
    ("obj", "kind", "expected"),
    [
        (keras.metrics.CategoricalAccuracy(), "metric", "categorical_accuracy"),
        ("categorical_accuracy", "metric", "categorical_accuracy"),
        (keras.metrics.categorical_accuracy, "metric", "categorical_accuracy"),
        (
            keras.metrics.TopKCategoricalAccuracy(k=10, name="categorical_accuracy"),
            "metric",
            "top_k_categorical_accuracy(k=10)",
        ),
        ("accuracy", "metric", "accuracy"),  # compile picks its kind from the labels
        ("acc", "metric", "accuracy"),
        (CategoricalAccuracy(), "metric", f"{__name__}.CategoricalAccuracy"),
        (keras.losses.CategoricalCrossentropy(), "loss", "categorical_crossentropy"),
        ("categorical_crossentropy", "loss", "categorical_crossentropy"),
        (keras.losses.categorical_crossentropy, "loss", "categorical_crossentropy"),
        (keras.losses.CategoricalCrossentropy(from_logits=True), "loss", "categorical_crossentropy(from_logits=True)"),
        (keras.losses.MeanSquaredError(name="categorical_crossentropy"), "loss", "mean_squared_error"),
        ("mse", "loss", "mean_squared_error"),
    ],
)
def test_identity_is_class_and_configuration_never_the_display_name(obj: object, kind: str, expected: str) -> None:
    assert identity(obj, kind) == expected


def test_names_keras_does_not_know_claim_nothing() -> None:
    assert resolved_identity("my_metric", "metric") is None
    assert resolved_identity("categorical_accuracy", "metric") == "categorical_accuracy"
