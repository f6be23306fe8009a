"""The re-evaluation's own measurements, on small Keras models in this process (no kernel, no sandbox):
what a loss or metric is, by class and configuration; the validation split it rebuilds against what fit
reported; accuracy against the provisioned labels, on the test images in the model's own input format."""

from __future__ import annotations

from pathlib import Path

import keras
import numpy as np
import pytest

from grader.kernel.probe import identity, resolved_identity
from grader.kernel.reevaluate import (
    _compiled,
    _load,
    _measure,
    _Provisioned,
    _same_images,
    _student_data,
    _test_images,
    _validation,
)

RNG = np.random.default_rng(7)
N_TRAIN, N_TEST = 300, 100


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


def _provisioned() -> _Provisioned:
    """Random images and labels standing in for the dataset file the grader provisions."""
    return _Provisioned(
        RNG.integers(0, 256, (N_TRAIN, 28, 28), dtype=np.uint8),
        RNG.integers(0, 10, N_TRAIN).astype(np.uint8),
        RNG.integers(0, 256, (N_TEST, 28, 28), dtype=np.uint8),
        RNG.integers(0, 10, N_TEST).astype(np.uint8),
    )


def _model(metrics: list[object], loss: str = "categorical_crossentropy") -> keras.Model:
    model = keras.Sequential(
        [
            keras.Input((28, 28, 1)),
            keras.layers.Flatten(),
            keras.layers.Dense(16, activation="sigmoid"),
            keras.layers.Dense(10, activation="softmax"),
        ]
    )
    model.compile(loss=loss, optimizer=keras.optimizers.SGD(learning_rate=0.02), metrics=metrics)
    return model


@pytest.mark.parametrize(("scaled", "onehot"), [(True, True), (False, False)])
def test_rebuilt_validation_split_reproduces_what_fit_reported(scaled: bool, onehot: bool) -> None:
    """Keras validates on the last part of what fit was given, after the epoch's last step: the same split
    rebuilt from the provisioned data gives the history's last values, in other batches."""
    data = _provisioned()
    x = np.expand_dims(data.x_train.astype("float32") / (255 if scaled else 1), -1)
    y = keras.utils.to_categorical(data.y_train, 10) if onehot else data.y_train
    loss = "categorical_crossentropy" if onehot else "sparse_categorical_crossentropy"
    model = _model(["accuracy"], loss)
    history = model.fit(x, y, batch_size=32, epochs=2, validation_split=0.1, verbose=0)
    request = {"validation_split": 0.1, "x_scaled": scaled, "x_sample_shape": [28, 28, 1], "y_onehot": onehot}
    measured = _validation(model, data, request, True)
    assert measured is not None and measured["n_samples"] == N_TRAIN // 10
    assert set(measured["values"]) == {"loss", "accuracy"}
    for key, value in measured["values"].items():
        assert value == pytest.approx(history.history[f"val_{key}"][-1], abs=1e-5)


def test_validation_needs_a_compiled_model_and_a_sane_request() -> None:
    data = _provisioned()
    request = {"validation_split": 0.1, "x_scaled": True, "x_sample_shape": [28, 28, 1], "y_onehot": True}
    uncompiled = keras.Sequential([keras.Input((28, 28, 1)), keras.layers.Flatten(), keras.layers.Dense(10)])
    assert _validation(uncompiled, data, request, True) is None
    assert _validation(_model([]), data, {**request, "x_sample_shape": [28, 28, 2]}, True) is None
    assert _validation(_model([]), data, {**request, "validation_split": 1.5}, True) is None


def test_compiled_metrics_are_read_by_what_they_compute() -> None:
    model = _model([keras.metrics.TopKCategoricalAccuracy(k=10, name="categorical_accuracy"), "accuracy"])
    compiled = _compiled(model)
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


def test_test_accuracy_is_counted_against_the_provisioned_labels() -> None:
    """The student's own labels do not count: a disguised metric or made-up labels change nothing."""
    data = _provisioned()
    model = _model([keras.metrics.TopKCategoricalAccuracy(k=10, name="categorical_accuracy")])
    x = np.expand_dims(data.x_test.astype("float32") / 255, -1)
    wrong = keras.utils.to_categorical((data.y_test + 1) % 10, 10)
    found = _student_data(model, (x, wrong), data, x, None)
    predicted = np.asarray(model(x, training=False)).argmax(axis=1)
    assert found["student_data_accuracy"] == pytest.approx(float((predicted == data.y_test).mean()))
    assert found["student_data_result"][1] == 1.0  # what the disguised metric reports
    assert "student_data_accuracy" not in _student_data(model, (x[:, ::-1], wrong), data, x, None)


@pytest.mark.parametrize("scaled", [True, False])
def test_accuracy_is_measured_in_the_models_own_input_format_and_scaling(tmp_path: Path, scaled: bool) -> None:
    """A model on flattened pixels (784) trained on raw values is measured on flattened raw test images."""
    data = _provisioned()
    model = keras.Sequential([keras.Input((784,)), keras.layers.Dense(10, activation="softmax")])
    model.compile(loss="categorical_crossentropy", optimizer="sgd", metrics=["accuracy"])
    x = _test_images(model, data, scaled)
    expected = data.x_test.reshape(N_TEST, 784).astype("float32") / (255 if scaled else 1)
    assert x.shape == (N_TEST, 784) and np.array_equal(x, expected)
    result: dict[str, object] = {}
    _measure(result, model, str(tmp_path), data, {"x_scaled": scaled, "validation": None})
    predicted = np.asarray(model(expected, training=False)).argmax(axis=1)
    assert result["message"] == ""
    assert result["accuracy"] == pytest.approx(float((predicted == data.y_test).mean()))


def test_a_model_whose_input_matches_no_reshaping_gets_the_reference_preparation() -> None:
    data = _provisioned()
    odd = keras.Sequential([keras.Input((32, 32, 3)), keras.layers.Flatten(), keras.layers.Dense(10)])
    assert _test_images(odd, data, True).shape == (N_TEST, 28, 28, 1)


def _trained(output: str | None, loss: keras.losses.Loss, metrics: list[object]) -> tuple[keras.Model, _Provisioned]:
    data = _provisioned()
    model = keras.Sequential([keras.Input((28, 28)), keras.layers.Flatten(), keras.layers.Dense(10, activation=output)])
    model.compile(loss=loss, optimizer="adam", metrics=metrics)
    model.fit(data.x_train / 255.0, data.y_train, epochs=2, verbose=0)
    return model, data


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
    model, data = _trained(output, loss, ["accuracy"])
    x, y = data.x_test / 255.0, data.y_test
    notebook = model.evaluate(x, y, verbose=0)
    model.save(tmp_path / "model.keras")
    np.savez(tmp_path / "student_test.npz", x=x, y=y)
    result, loaded = _load(str(tmp_path))
    _measure(result, loaded, str(tmp_path), data, {"x_scaled": True, "validation": None})
    assert result["message"] == ""
    assert result["test_result"] == pytest.approx(notebook, abs=1e-5)
    assert result["student_data_result"] == pytest.approx(notebook, abs=1e-5)


def test_the_test_set_is_the_provisioned_one_whatever_the_student_evaluated(tmp_path: Path) -> None:
    """Test arrays replaced by the images the model classifies correctly: evaluate on them gives 1.0, the
    provisioned test set does not."""
    model, data = _trained("softmax", keras.losses.SparseCategoricalCrossentropy(), ["accuracy"])
    x = data.x_test / 255.0
    right = model.predict(x, verbose=0).argmax(axis=1) == data.y_test
    model.save(tmp_path / "model.keras")
    np.savez(tmp_path / "student_test.npz", x=x[right], y=data.y_test[right])
    result, loaded = _load(str(tmp_path))
    _measure(result, loaded, str(tmp_path), data, {"x_scaled": True, "validation": None})
    assert result["student_data_result"][1] == 1.0 and "student_data_accuracy" not in result
    assert result["test_result"] == pytest.approx(model.evaluate(x, data.y_test, verbose=0), abs=1e-5)
    assert result["test_result"][1] == pytest.approx(right.mean())


def test_images_scaled_and_shifted_alike_are_the_provisioned_ones() -> None:
    raw = _provisioned().x_test
    for prepared in (raw, raw / 255.0, (raw - raw.mean()) / raw.std(), raw.astype("float32") / 127.5 - 1):
        assert _same_images(prepared.reshape(N_TEST, 784), raw)
    assert not _same_images(raw[::-1], raw)
    assert not _same_images(raw[:50], raw)
    assert not _same_images(np.sqrt(raw), raw)


def _my_accuracy(y_true: object, y_pred: object) -> object:
    return keras.ops.mean(keras.ops.equal(keras.ops.cast(y_true, "int64"), keras.ops.argmax(y_pred, -1)))


_my_accuracy.__module__ = "__main__"  # defined in a notebook: nothing another process can import


def test_a_metric_of_the_notebooks_own_leaves_the_rest_measured(tmp_path: Path) -> None:
    """The fresh process cannot run the notebook's own metric: the model still loads, with its weights, its
    optimizer's steps and the loss and metrics Keras can rebuild; evaluate's results are not claimed."""
    model, data = _trained("softmax", keras.losses.SparseCategoricalCrossentropy(), ["accuracy", _my_accuracy])
    model.save(tmp_path / "model.keras")
    result, loaded = _load(str(tmp_path))
    assert result["ok"] and result["unrestored"] == ["_my_accuracy"] and result["compiled"] is None
    assert result["optimizer_iterations"] == int(model.optimizer.iterations.numpy())
    request = {"validation_split": 0.1, "x_scaled": True, "x_sample_shape": [28, 28], "y_onehot": False}
    _measure(result, loaded, str(tmp_path), data, {"x_scaled": True, "validation": request})
    assert "test_result" not in result and "_my_accuracy" in result["message"]
    assert result["accuracy"] is not None and set(result["validation"]["values"]) == {"loss", "accuracy"}


class _NonNegative(keras.constraints.Constraint):
    def __call__(self, w: object) -> object:
        return keras.ops.relu(w)


_NonNegative.__module__ = "__main__"  # a notebook's own class: nothing another process can import


def test_a_model_of_the_notebooks_own_classes_is_not_loaded_and_says_how_to_fix_it(tmp_path: Path) -> None:
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(2, kernel_constraint=_NonNegative())])
    model.save(tmp_path / "model.keras")
    result, loaded = _load(str(tmp_path))
    assert loaded is None and not result["ok"]
    assert "could not be loaded" in result["message"] and "Keras's own classes" in result["message"]
    assert "`_NonNegative`" in result["message"] and "'config'" not in result["message"]  # the cause, not the config
