"""Re-evaluates a student's saved model in a fresh process, away from anything the student's code touched.

Usage: python -m grader_kernel.reevaluate RUN_DIR DATASET_NPZ. The grader writes "go" on stdin once the
model is saved, then one more line: a JSON object whose "validation" says how to rebuild the training fit's
validation split (`grader.facts.ValidationRequest`), or null, and whose "x_scaled" says whether the student
trained on pixels divided by 255 (else raw). Prints one JSON object on the last line of stdout.

The model is loaded with `safe_mode=True`, so a saved Lambda layer cannot run code here, and a loss or metric
can only be one of Keras's own classes. Everything measured here is evidence the student's code cannot
write: the model's accuracy on the provisioned test images against the provisioned labels, its loss and
metrics on the validation split rebuilt from the provisioned training set, a digest of its weights, and
what its compiled loss and metrics compute, by class and configuration.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import stat
import sys
from dataclasses import dataclass
from typing import Any

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

_MAX_METRICS = 20
_BATCH = 1024  # images per forward pass


@dataclass(frozen=True)
class _Provisioned:
    """The dataset as the grader provisioned it (never the student's copy)."""

    x_train: Any
    y_train: Any
    x_test: Any
    y_test: Any

    @property
    def classes(self) -> int:
        """The width of a one-hot label, as keras.utils.to_categorical makes it."""
        return int(self.y_train.max()) + 1


def _regular_file(path: str) -> bool:
    """The kernel wrote this folder: a link or a FIFO in place of a file is treated as no file."""
    try:
        return stat.S_ISREG(os.lstat(path).st_mode)
    except OSError:
        return False


def _load_dataset(path: str) -> _Provisioned:
    import numpy as np

    with np.load(path) as data:
        return _Provisioned(data["x_train"], data["y_train"], data["x_test"], data["y_test"])


def _warm_up(data: _Provisioned) -> None:
    """Puts a tiny model through a direct call and a compiled loss and metric, so that TensorFlow's one-time
    set-up (thread pools, kernels) is done before the grader waits for an answer."""
    import keras
    import numpy as np

    sample = data.x_test[:8].astype("float32")
    model = keras.Sequential([keras.Input(shape=sample.shape[1:]), keras.layers.Flatten(), keras.layers.Dense(10)])
    model.compile(loss="categorical_crossentropy", metrics=["categorical_accuracy"])
    _evaluated(model, np.eye(10, dtype="float32")[: len(sample)], _probabilities(model, sample))


def _test_images(model: Any, data: _Provisioned, scaled: bool) -> Any:
    """The provisioned test images in the model's own input format: reshaped to the shape it accepts when the
    element count matches (784 and 28x28x1 alike), else with a channel axis as the reference prepares them;
    divided by 255 unless the student trained on raw pixels."""
    import numpy as np

    x = data.x_test.astype("float32")
    if scaled:
        x /= np.float32(255)
    accepted = _input_shape(model)
    if accepted is not None and math.prod(accepted) == x[0].size:
        return x.reshape(len(x), *accepted)
    return np.expand_dims(x, -1)


def _input_shape(model: Any) -> tuple[int, ...] | None:
    """The shape of one sample the model accepts; None when it has several inputs or an open dimension."""
    try:
        shape = tuple(model.input_shape)
    except Exception:
        return None
    sample = shape[1:]
    if not sample or not all(isinstance(n, int) and n > 0 for n in sample):
        return None
    return sample


def _load(run_dir: str) -> tuple[dict[str, Any], Any]:
    """The saved model and what it is (structure, weights, compile config); the model is None if it did not load."""
    import keras

    model_path = os.path.join(run_dir, "model.keras")
    if not _regular_file(model_path):
        return {"ok": False, "message": "no trained model was saved (no Keras model was found in the notebook)"}, None
    try:
        model = keras.saving.load_model(model_path, safe_mode=True)
    except Exception as exc:
        failed = f"the saved model could not be loaded: {type(exc).__name__}: {exc}"[:400]
        return {"ok": False, "message": failed}, None
    from .probe import layer_facts, optimizer_steps, weights_digest

    result: dict[str, Any] = {"ok": True, "message": "", "weights_digest": weights_digest(model)}
    try:
        result["layers"] = layer_facts(model)
        result["total_params"] = int(model.count_params())
    except Exception:
        result["layers"], result["total_params"] = None, None
    result["optimizer_iterations"] = optimizer_steps(model)
    try:
        result["compiled"] = _compiled(model)
    except Exception:
        result["compiled"] = None
    return result, model


def _measure(result: dict[str, Any], model: Any, run_dir: str, data: _Provisioned, request: dict[str, Any]) -> None:
    """Adds the model's accuracy and loss on the provisioned test set (in its own input format, scaled as its
    training data was), its loss and metrics on the student's test arrays, and on the validation split."""
    import numpy as np

    problems: list[str] = []
    x = _test_images(model, data, request.get("x_scaled") is not False)
    try:
        probs = _probabilities(model, x)
        result["accuracy"] = float((probs.argmax(axis=1) == data.y_test).mean())
        picked = np.clip(probs[np.arange(len(data.y_test)), data.y_test].astype("float64"), 1e-7, 1.0)
        result["loss"] = float(-np.log(picked).mean())
    except Exception as exc:
        probs = None
        shape = "x".join(str(n) for n in x.shape[1:])
        problems.append(f"the model cannot classify {shape} test images: {type(exc).__name__}: {exc}")
    student_path = os.path.join(run_dir, "student_test.npz")
    if _regular_file(student_path):
        try:
            result.update(_student_data(model, student_path, data, x, probs))
        except Exception as exc:
            problems.append(f"evaluate on the student's test arrays failed: {type(exc).__name__}: {exc}")
    validation = request.get("validation")
    if isinstance(validation, dict):
        try:
            result["validation"] = _validation(model, data, validation)
        except Exception as exc:
            problems.append(f"evaluate on the validation split failed: {type(exc).__name__}: {exc}")
    result["message"] = " ".join(problems)[:600]


def _probabilities(model: Any, x: Any) -> Any:
    """The model's outputs, one row per sample, as `model.predict(x, batch_size=_BATCH)` gives them, by calling
    the model on each batch directly: predict and evaluate trace a tf.function and set up an input pipeline
    for every new model, which costs more than one pass over arrays this small."""
    import keras
    import numpy as np

    batches = [keras.ops.convert_to_numpy(model(x[i : i + _BATCH], training=False)) for i in range(0, len(x), _BATCH)]
    return np.concatenate([np.asarray(b, dtype="float32").reshape(len(b), -1) for b in batches])


def _evaluated(model: Any, y: Any, probs: Any) -> dict[str, float]:
    """What model.evaluate returns for these outputs, in its order: "loss", then each compiled metric by name."""
    model.reset_metrics()
    loss = model.compute_loss(y=y, y_pred=probs, training=False)
    values = {"loss": loss, **{k: v for k, v in model.compute_metrics(None, y, probs).items() if k != "loss"}}
    measured: dict[str, float] = {}
    for key, value in values.items():
        try:
            measured[str(key)[:100]] = float(value)
        except (TypeError, ValueError):
            continue  # a metric with several values (per class): nothing in a history to compare it with
    return measured


def _student_data(model: Any, path: str, data: _Provisioned, prepared: Any, probs: Any) -> dict[str, Any]:
    """The model's loss and metrics on the student's own test arrays, as model.evaluate gives them; and, when
    those images are the provisioned ones, its accuracy on them against the provisioned labels. `probs` are
    the model's outputs on `prepared`, the grader's own preparation of the test images (None if it failed)."""
    import numpy as np

    from .probe import pixels_match

    with np.load(path, allow_pickle=False) as saved:
        x, y = saved["x"], saved["y"]
    # The student's images, as the student prepared them: a model trained on raw pixels is measured on raw
    # pixels. The grader's preparation's outputs serve when the arrays are the same.
    same = probs is not None and x.shape == prepared.shape and np.array_equal(x.astype("float32"), prepared)
    outputs = probs if same else _probabilities(model, x)
    found: dict[str, Any] = {}
    if getattr(model, "compiled", False):
        found["student_data_result"] = list(_evaluated(model, y, outputs).values())
    raw = data.x_test
    if x.size == raw.size and len(x) == len(raw) and x.dtype.kind in "biuf":
        scaled, unscaled = pixels_match(x.reshape(raw.shape), raw, np.array_equal)
        if scaled or unscaled:
            found["student_data_accuracy"] = float((outputs.argmax(axis=1) == data.y_test).mean())
    return found


def _validation(model: Any, data: _Provisioned, request: dict[str, Any]) -> dict[str, Any] | None:
    """The model's loss and metrics on the validation split that Keras took from the provisioned training set."""
    import numpy as np

    split = request.get("validation_split")
    shape = request.get("x_sample_shape")
    if not isinstance(split, float) or not 0.0 < split < 1.0 or not getattr(model, "compiled", False):
        return None
    if not isinstance(shape, list) or not all(isinstance(n, int) and n > 0 for n in shape) or len(shape) > 4:
        return None
    n = len(data.x_train)
    if math.prod(shape) != data.x_train[0].size:
        return None
    start = int(math.floor(n * (1.0 - split)))  # Keras keeps the first part to train on, before shuffling
    if not 0 < start < n:
        return None
    x = data.x_train[start:].astype("float32")
    if request.get("x_scaled") is True:
        x /= np.float32(255)
    labels = data.y_train[start:]
    y = np.eye(data.classes, dtype="float32")[labels] if request.get("y_onehot") is True else labels
    values = _evaluated(model, y, _probabilities(model, x.reshape(len(x), *shape)))
    finite = {key: value for key, value in values.items() if math.isfinite(value)}
    return {"validation_split": split, "n_samples": n - start, "values": finite}


def _compiled(model: Any) -> dict[str, Any] | None:
    """The loss, metrics and optimizer of the model's compile config, each by what it is, not what it is named."""
    import keras

    from .probe import compile_objects, identity, learning_rate, optimizer_name

    config = model.get_compile_config() if getattr(model, "compiled", False) else {}
    if not config:
        return None
    metrics = _flat(keras.saving.deserialize_keras_object(config.get("metrics")))[:_MAX_METRICS]
    return {
        "loss": identity(getattr(model, "loss", None), "loss"),
        "metrics": [_metric_facts(m) for m in metrics],
        "optimizer": optimizer_name(getattr(model, "optimizer", None)),
        "learning_rate": learning_rate(getattr(model, "optimizer", None)),
        **compile_objects(getattr(model, "loss", None), getattr(model, "optimizer", None), metrics),
    }


def _flat(value: Any) -> list[Any]:
    """The metrics of every output, in order (compile takes a list, or a dict or list per output)."""
    if value is None:
        return []
    if isinstance(value, list | tuple):
        return [m for item in value for m in _flat(item)]
    if isinstance(value, dict):
        return [m for item in value.values() for m in _flat(item)]
    return [value]


def _metric_facts(metric: Any) -> dict[str, Any]:
    from .probe import identity, resolved_identity

    if isinstance(metric, str):  # Keras's own name for what it resolves the string to
        return {"name": metric[:100], "identity": identity(metric, "metric"), "name_identity": None}
    name = str(getattr(metric, "name", ""))[:100]
    return {"name": name, "identity": identity(metric, "metric"), "name_identity": resolved_identity(name, "metric")}


def _request(line: str) -> dict[str, Any]:
    """The grader's second line: {"validation": ValidationRequest or null, "x_scaled": bool}; {} if unreadable."""
    try:
        message = json.loads(line)
    except ValueError:
        return {}
    return message if isinstance(message, dict) else {}


def main() -> None:
    run_dir, dataset = sys.argv[1], sys.argv[2]
    # Everything that does not need the student's model happens first, then this process waits: the grader
    # starts it beside the kernel and says "go" on stdin once the model is saved, so the imports, the
    # dataset and TensorFlow's warm-up overlap the notebook's run instead of adding to it.
    data: _Provisioned | Exception
    try:
        data = _load_dataset(dataset)
    except Exception as exc:  # reported after "go", like any other failure here
        data = exc
    if not isinstance(data, Exception):
        with contextlib.suppress(Exception):  # only a head start: the evaluation reports its own errors
            _warm_up(data)
    sys.stdin.readline()
    try:
        if isinstance(data, Exception):
            raise data
        result, model = _load(run_dir)
        # How the student prepared the training data is known once the grader has read the kernel's facts: it
        # comes after "go", while the model loads.
        request = _request(sys.stdin.readline())
        if model is not None:
            _measure(result, model, run_dir, data, request)
    except Exception as exc:  # reported as data: the grader turns it into a check message
        result = {"ok": False, "message": f"re-evaluation failed: {type(exc).__name__}: {exc}"[:400]}
    print(json.dumps(result), flush=True)
    # The answer is out and the sandbox goes next: skip TensorFlow's interpreter teardown (most of a
    # second, during which the grader would wait for this process to end).
    os._exit(0)


if __name__ == "__main__":
    main()
