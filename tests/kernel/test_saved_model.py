"""The saved model loaded without the notebook's code: what its compile config computes, a metric or a class of
the notebook's own left out and said so."""

from __future__ import annotations

from pathlib import Path

import keras
import pytest

from grader.kernel.measure import measure
from grader.kernel.saved_model import compile_facts, load
from tests.kernel.models import small_model, trained


def test_compiled_metrics_are_read_by_what_they_compute() -> None:
    model = small_model([keras.metrics.TopKCategoricalAccuracy(k=10, name="categorical_accuracy"), "accuracy"])
    compiled = compile_facts(model)
    assert compiled is not None and compiled["loss"] == "categorical_crossentropy"
    assert compiled["metrics"] == [
        {
            "name": "categorical_accuracy",
            "identity": "top_k_categorical_accuracy(k=10)",
            "name_identity": "categorical_accuracy",
        },
        {"name": "accuracy", "identity": "accuracy", "name_identity": None},
    ]
    assert compiled["optimizer"] == "sgd" and compiled["learning_rate"] == pytest.approx(0.02)


def _my_accuracy(y_true: object, y_pred: object) -> object:
    return keras.ops.mean(keras.ops.equal(keras.ops.cast(y_true, "int64"), keras.ops.argmax(y_pred, -1)))


_my_accuracy.__module__ = "__main__"  # defined in a notebook: nothing another process can import


def test_a_metric_of_the_notebooks_own_leaves_the_rest_measured(tmp_path: Path) -> None:
    """The fresh process cannot run the notebook's own metric: the model still loads, with its weights, its
    optimizer's steps and the loss and metrics Keras can rebuild; evaluate's results are not claimed."""
    model, data = trained("softmax", keras.losses.SparseCategoricalCrossentropy(), ["accuracy", _my_accuracy])
    model.save(tmp_path / "model.keras")
    result, loaded = load(str(tmp_path))
    assert result["ok"] and result["unrestored"] == ["_my_accuracy"] and result["compiled"] is None
    assert result["optimizer_iterations"] == int(model.optimizer.iterations.numpy())
    request = {"validation_split": 0.1, "x_scaled": True, "x_sample_shape": [28, 28], "y_onehot": False}
    measure(result, loaded, str(tmp_path), data, {"x_scaled": True, "validation": request})
    assert "test_result" not in result and "_my_accuracy" in result["message"]
    assert result["accuracy"] is not None and set(result["validation"]["values"]) == {"loss", "accuracy"}


class _NonNegative(keras.constraints.Constraint):
    def __call__(self, w: object) -> object:
        return keras.ops.relu(w)


_NonNegative.__module__ = "__main__"  # a notebook's own class: nothing another process can import


def test_a_model_of_the_notebooks_own_classes_is_not_loaded_and_says_how_to_fix_it(tmp_path: Path) -> None:
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(2, kernel_constraint=_NonNegative())])
    model.save(tmp_path / "model.keras")
    result, loaded = load(str(tmp_path))
    assert loaded is None and not result["ok"]
    assert "could not be loaded" in result["message"] and "Keras's own classes" in result["message"]
    assert "`_NonNegative`" in result["message"] and "'config'" not in result["message"]  # the cause, not the config
