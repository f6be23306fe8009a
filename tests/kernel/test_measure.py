"""The re-evaluation's measurements on small Keras models in this process: the validation split it rebuilds
against what fit reported, accuracy against the provisioned labels on the test images in the model's own input
format, and evaluate as the notebook's evaluate computes it."""

from __future__ import annotations

from pathlib import Path

import keras
import numpy as np
import pytest

from grader.kernel.measure import measure, student_data, validation_values
from grader.kernel.provisioned import prepared_test_images
from grader.kernel.saved_model import load
from tests.kernel.models import N_TEST, N_TRAIN, provisioned, small_model, trained


@pytest.mark.parametrize(("scaled", "onehot"), [(True, True), (False, False)])
def test_rebuilt_validation_split_reproduces_what_fit_reported(scaled: bool, onehot: bool) -> None:
    """Keras validates on the last part of what fit was given, after the epoch's last step: the same split
    rebuilt from the provisioned data gives the history's last values, in other batches."""
    data = provisioned()
    x = np.expand_dims(data.x_train.astype("float32") / (255 if scaled else 1), -1)
    y = keras.utils.to_categorical(data.y_train, 10) if onehot else data.y_train
    loss = "categorical_crossentropy" if onehot else "sparse_categorical_crossentropy"
    model = small_model(["accuracy"], loss)
    history = model.fit(x, y, batch_size=32, epochs=2, validation_split=0.1, verbose=0)
    request = {"validation_split": 0.1, "x_scaled": scaled, "x_sample_shape": [28, 28, 1], "y_onehot": onehot}
    measured = validation_values(model, data, request, True)
    assert measured is not None and measured["n_samples"] == N_TRAIN // 10
    assert set(measured["values"]) == {"loss", "accuracy"}
    for key, value in measured["values"].items():
        assert value == pytest.approx(history.history[f"val_{key}"][-1], abs=1e-5)


def test_validation_needs_a_compiled_model_and_a_sane_request() -> None:
    data = provisioned()
    request = {"validation_split": 0.1, "x_scaled": True, "x_sample_shape": [28, 28, 1], "y_onehot": True}
    uncompiled = keras.Sequential([keras.Input((28, 28, 1)), keras.layers.Flatten(), keras.layers.Dense(10)])
    assert validation_values(uncompiled, data, request, True) is None
    assert validation_values(small_model([]), data, {**request, "x_sample_shape": [28, 28, 2]}, True) is None
    assert validation_values(small_model([]), data, {**request, "validation_split": 1.5}, True) is None


def test_test_accuracy_is_counted_against_the_provisioned_labels() -> None:
    """The student's own labels do not count: a disguised metric or made-up labels change nothing."""
    data = provisioned()
    model = small_model([keras.metrics.TopKCategoricalAccuracy(k=10, name="categorical_accuracy")])
    x = np.expand_dims(data.x_test.astype("float32") / 255, -1)
    wrong = keras.utils.to_categorical((data.y_test + 1) % 10, 10)
    found = student_data(model, (x, wrong), data, x, None)
    predicted = np.asarray(model(x, training=False)).argmax(axis=1)
    assert found["student_data_accuracy"] == pytest.approx(float((predicted == data.y_test).mean()))
    assert found["student_data_result"][1] == 1.0  # what the disguised metric reports
    assert "student_data_accuracy" not in student_data(model, (x[:, ::-1], wrong), data, x, None)


@pytest.mark.parametrize("scaled", [True, False])
def test_accuracy_is_measured_in_the_models_own_input_format_and_scaling(tmp_path: Path, scaled: bool) -> None:
    """A model on flattened pixels (784) trained on raw values is measured on flattened raw test images."""
    data = provisioned()
    model = keras.Sequential([keras.Input((784,)), keras.layers.Dense(10, activation="softmax")])
    model.compile(loss="categorical_crossentropy", optimizer="sgd", metrics=["accuracy"])
    x = prepared_test_images(model, data, scaled)
    expected = data.x_test.reshape(N_TEST, 784).astype("float32") / (255 if scaled else 1)
    assert x.shape == (N_TEST, 784) and np.array_equal(x, expected)
    result: dict[str, object] = {}
    measure(result, model, str(tmp_path), data, {"x_scaled": scaled, "validation": None})
    predicted = np.asarray(model(expected, training=False)).argmax(axis=1)
    assert result["message"] == ""
    assert result["accuracy"] == pytest.approx(float((predicted == data.y_test).mean()))


@pytest.mark.parametrize(
    ("output", "loss"),
    [
        # Keras evaluates a softmax output under from_logits=True on the logits behind it: 0.11 where the
        # outputs, taken as logits, give 1.50.
        ("softmax", keras.losses.SparseCategoricalCrossentropy(from_logits=True)),
        (None, keras.losses.SparseCategoricalCrossentropy(from_logits=True)),  # the TensorFlow quickstart
        ("softmax", keras.losses.SparseCategoricalCrossentropy()),
    ],
)
def test_the_test_set_is_evaluated_as_the_notebooks_evaluate_does(
    tmp_path: Path, output: str | None, loss: keras.losses.Loss
) -> None:
    model, data = trained(output, loss, ["accuracy"])
    x, y = data.x_test / 255.0, data.y_test
    notebook = model.evaluate(x, y, verbose=0)
    model.save(tmp_path / "model.keras")
    np.savez(tmp_path / "student_test.npz", x=x, y=y)
    result, loaded = load(str(tmp_path))
    measure(result, loaded, str(tmp_path), data, {"x_scaled": True, "validation": None})
    assert result["message"] == ""
    assert result["test_result"] == pytest.approx(notebook, abs=1e-5)
    assert result["student_data_result"] == pytest.approx(notebook, abs=1e-5)


def test_the_test_set_is_the_provisioned_one_whatever_the_student_evaluated(tmp_path: Path) -> None:
    """Test arrays replaced by the images the model classifies correctly: evaluate on them gives 1.0, the
    provisioned test set does not."""
    model, data = trained("softmax", keras.losses.SparseCategoricalCrossentropy(), ["accuracy"])
    x = data.x_test / 255.0
    right = model.predict(x, verbose=0).argmax(axis=1) == data.y_test
    model.save(tmp_path / "model.keras")
    np.savez(tmp_path / "student_test.npz", x=x[right], y=data.y_test[right])
    result, loaded = load(str(tmp_path))
    measure(result, loaded, str(tmp_path), data, {"x_scaled": True, "validation": None})
    assert result["student_data_result"][1] == 1.0 and "student_data_accuracy" not in result
    assert result["test_result"] == pytest.approx(model.evaluate(x, data.y_test, verbose=0), abs=1e-5)
    assert result["test_result"][1] == pytest.approx(right.mean())
