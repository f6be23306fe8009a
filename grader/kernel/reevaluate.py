"""Re-evaluates a student's saved model in a fresh process, away from anything the student's code touched.

Usage: python -m grader_kernel.reevaluate RUN_DIR DATASET_NPZ. The grader writes "go" on stdin once the
model is saved, then one more line: a JSON object whose "validation" says how to rebuild the training fit's
validation split (`grader.facts.ValidationRequest`), or null, and whose "x_scaled" says whether the student
trained on pixels divided by 255 (else raw). Prints one JSON object on the last line of stdout.

The model is loaded with `safe_mode=True` and none of the notebook's code, so a saved Lambda layer cannot run
code here, and a loss or metric can only be one of Keras's own classes; a compiled loss or metric that is the
notebook's own is left out (`unrestored`), and what depends on it is not measured. Everything measured here is
evidence the student's code cannot write: the model's accuracy on the provisioned test images against the
provisioned labels, `model.evaluate` itself (as the notebook's evaluate computes it, softmax outputs under a
`from_logits` loss included) on the provisioned test set, on the student's test arrays and on the validation
split rebuilt from the provisioned training set, a digest of its weights, and what its compiled loss and
metrics compute, by class and configuration.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import stat
import sys
import zipfile
from dataclasses import dataclass
from typing import Any

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

_MAX_METRICS = 20
_BATCH = 1024  # images per forward pass
_EVALUATE_BATCH = 32  # Keras's default for evaluate, which a notebook's evaluate uses unless told otherwise
# Why a model that does not load cannot be verified, and what makes it loadable.
_LOADABLE = (
    " The grader re-loads the saved model in a fresh process without the notebook's code, so a custom layer, "
    "constraint or initializer cannot be re-created there: build the model from Keras's own classes "
    "(e.g. keras.constraints.MaxNorm), so that keras.saving.load_model can load it without custom_objects."
)


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
    _probabilities(model, sample)
    _evaluated(model, sample, np.eye(10, dtype="float32")[: len(sample)])


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
    unrestored: list[str] = []
    try:
        model, whole = keras.saving.load_model(model_path, safe_mode=True), True
    except Exception as exc:
        model, whole = _uncompiled(model_path, unrestored), False
        if model is None:
            return {"ok": False, "message": f"the saved model could not be loaded: {_cause(exc)}.{_LOADABLE}"}, None
    from .probe import layer_facts, optimizer_steps, weights_digest

    result: dict[str, Any] = {"ok": True, "message": "", "weights_digest": weights_digest(model)}
    if unrestored:
        result["unrestored"] = unrestored
    try:
        result["layers"] = layer_facts(model)
        result["total_params"] = int(model.count_params())
    except Exception:
        result["layers"], result["total_params"] = None, None
    # Without its own compile config, the model has neither its optimizer nor its compile settings here.
    result["optimizer_iterations"] = optimizer_steps(model) if whole else _saved_steps(model_path)
    try:
        result["compiled"] = _compiled(model) if whole else None
    except Exception:
        result["compiled"] = None
    return result, model


def _cause(exc: Exception) -> str:
    """What a failed load says about its cause: Keras puts it after the whole config it could not rebuild."""
    text = str(exc).rsplit("Exception encountered:", 1)[-1].strip()
    first = text.splitlines()[0] if text else ""
    return f"{type(exc).__name__}: {first}"[:300].rstrip(".")


def _uncompiled(path: str, unrestored: list[str]) -> Any:
    """The saved model without its compile config, compiled again with the loss and metrics Keras can rebuild
    without the notebook's code; the others are named in `unrestored`. None when even the model does not load
    (a layer or constraint of the notebook's own)."""
    import keras

    try:
        model = keras.saving.load_model(path, safe_mode=True, compile=False)
    except Exception:
        return None
    try:
        with zipfile.ZipFile(path) as archive:
            config = json.loads(archive.read("config.json")).get("compile_config") or {}
    except (OSError, ValueError, KeyError, zipfile.BadZipFile):
        config = {}
    loss = _rebuilt(config.get("loss"), unrestored)
    metrics = [m for m in (_rebuilt(item, unrestored) for item in _flat(config.get("metrics"))) if m is not None]
    if loss is not None or metrics:
        with contextlib.suppress(Exception):  # left uncompiled: nothing that depends on the compile config is measured
            model.compile(loss=loss, metrics=metrics)
    if config.get("loss") is not None and loss is None:
        unrestored.insert(0, "loss")  # evaluate's first value is then not the notebook's loss
    return model


def _saved_steps(path: str) -> int | None:
    """The optimizer's step counter as the archive stores it (the optimizer's first variable), for a model loaded
    without its compile config; None when the archive holds no optimizer."""
    import io

    import h5py
    import numpy as np

    try:
        with zipfile.ZipFile(path) as archive, h5py.File(io.BytesIO(archive.read("model.weights.h5")), "r") as h5:
            return int(np.asarray(h5["optimizer/vars/0"]))
    except Exception:
        return None


def _rebuilt(item: Any, unrestored: list[str]) -> Any:
    """A compiled loss or metric rebuilt from its config; None (and its name in `unrestored`) when it is the
    notebook's own code."""
    import keras

    if item is None:
        return None
    try:
        return keras.saving.deserialize_keras_object(item, safe_mode=True)
    except Exception:
        name = item.get("config") if isinstance(item, dict) else item
        unrestored.append(str(name if isinstance(name, str) else item.get("class_name", "?"))[:100])
        return None


def _measure(result: dict[str, Any], model: Any, run_dir: str, data: _Provisioned, request: dict[str, Any]) -> None:
    """Adds the model's accuracy and loss on the provisioned test set (in its own input format, scaled as its
    training data was), evaluate's results on the provisioned test set and on the student's test arrays, and
    on the validation split."""

    problems: list[str] = []
    x = _test_images(model, data, request.get("x_scaled") is not False)
    try:
        probs = _probabilities(model, x)
        result["accuracy"] = float((probs.argmax(axis=1) == data.y_test).mean())
        result["loss"] = _cross_entropy(probs, data.y_test)
    except Exception as exc:
        probs = None
        shape = "x".join(str(n) for n in x.shape[1:])
        problems.append(f"the model cannot classify {shape} test images: {type(exc).__name__}: {exc}")
    student = _student_arrays(os.path.join(run_dir, "student_test.npz"), problems)
    if student is not None:
        try:
            result.update(_student_data(model, student, data, x, probs))
        except Exception as exc:
            problems.append(f"evaluate on the student's test arrays failed: {type(exc).__name__}: {exc}")
    if _comparable(model, result):
        try:
            result["test_result"] = _test_result(model, data, x, student, result)
        except Exception as exc:
            problems.append(f"evaluate on the test set failed: {type(exc).__name__}: {exc}")
    elif result.get("unrestored"):
        problems.append(
            f"the compiled {', '.join(result['unrestored'])} is the notebook's own code, which the grader does not "
            "run: evaluate's results cannot be recomputed (the test accuracy is the grader's own count)"
        )
    validation = request.get("validation")
    if isinstance(validation, dict):
        try:
            result["validation"] = _validation(model, data, validation, "loss" not in result.get("unrestored", []))
        except Exception as exc:
            problems.append(f"evaluate on the validation split failed: {type(exc).__name__}: {exc}")
    result["message"] = " ".join(problems)[:600]


def _comparable(model: Any, result: dict[str, Any]) -> bool:
    """Whether evaluate here returns what the notebook's evaluate returned: compiled with all its own loss and
    metrics."""
    return bool(getattr(model, "compiled", False)) and not result.get("unrestored")


def _cross_entropy(outputs: Any, labels: Any) -> float:
    """The cross-entropy of the model's predicted distribution: its outputs, or their softmax when they are
    logits (rows that are not probabilities)."""
    import numpy as np

    probs = outputs.astype("float64")
    if not (np.all(probs >= 0) and np.allclose(probs.sum(axis=1), 1.0, atol=1e-3)):
        shifted = np.exp(probs - probs.max(axis=1, keepdims=True))
        probs = shifted / shifted.sum(axis=1, keepdims=True)
    picked = np.clip(probs[np.arange(len(labels)), labels], 1e-7, 1.0)
    return float(-np.log(picked).mean())


def _student_arrays(path: str, problems: list[str]) -> tuple[Any, Any] | None:
    """The student's test images and labels as the kernel saved them; None when there are none."""
    import numpy as np

    if not _regular_file(path):
        return None
    try:
        with np.load(path, allow_pickle=False) as saved:
            return saved["x"], saved["y"]
    except Exception as exc:
        problems.append(f"the student's test arrays could not be read: {type(exc).__name__}: {exc}")
        return None


def _test_result(
    model: Any, data: _Provisioned, prepared: Any, student: tuple[Any, Any] | None, found: dict[str, Any]
) -> Any:
    """What model.evaluate returns on the provisioned test set: the student's own test images when they are the
    provisioned ones (prepared as the student prepared them: `found` has their accuracy), else the grader's
    preparation; always against the provisioned labels, in the form the student's labels (else the compiled
    loss) take. When that is exactly the student's arrays, `found`'s evaluate on them serves."""
    import numpy as np

    own = student is not None and "student_data_accuracy" in found
    labels = _labels_like(model, data, student[1] if student is not None else None)
    if own and student is not None and "student_data_result" in found and np.array_equal(labels, student[1]):
        return found["student_data_result"]
    return _evaluated(model, student[0] if own and student is not None else prepared, labels)


def _labels_like(model: Any, data: _Provisioned, student_y: Any) -> Any:
    """The provisioned test labels, one-hot or class ids as the student's labels are, else as the compiled loss
    expects them (class ids for a sparse loss)."""
    import numpy as np

    from .probe import identity

    labels = data.y_test
    if student_y is not None and student_y.shape[:1] == labels.shape:
        if student_y.ndim == 2 and student_y.shape[1] == data.classes:
            return np.eye(data.classes, dtype="float32")[labels]
        if student_y.size == labels.size:
            return labels.reshape(student_y.shape)
    if "sparse" in (identity(getattr(model, "loss", None), "loss") or "sparse"):
        return labels
    return np.eye(data.classes, dtype="float32")[labels]


def _probabilities(model: Any, x: Any) -> Any:
    """The model's outputs, one row per sample, as `model.predict(x, batch_size=_BATCH)` gives them, by calling
    the model on each batch directly: predict and evaluate trace a tf.function and set up an input pipeline
    for every new model, which costs more than one pass over arrays this small."""
    import keras
    import numpy as np

    batches = [keras.ops.convert_to_numpy(model(x[i : i + _BATCH], training=False)) for i in range(0, len(x), _BATCH)]
    return np.concatenate([np.asarray(b, dtype="float32").reshape(len(b), -1) for b in batches])


def _evaluated(model: Any, x: Any, y: Any) -> list[float]:
    """What model.evaluate(x, y) returns, in its order: the loss, then the compiled metrics."""
    values = model.evaluate(x, y, batch_size=_EVALUATE_BATCH, verbose=0)
    return [float(v) for v in (values if isinstance(values, list | tuple) else [values])]


def _evaluated_by_name(model: Any, x: Any, y: Any) -> dict[str, float]:
    """What model.evaluate(x, y, return_dict=True) returns: "loss" and each compiled metric by name."""
    measured: dict[str, float] = {}
    for key, value in model.evaluate(x, y, batch_size=_EVALUATE_BATCH, verbose=0, return_dict=True).items():
        try:
            measured[str(key)[:100]] = float(value)
        except (TypeError, ValueError):
            continue  # a metric with several values (per class): nothing in a history to compare it with
    return measured


def _student_data(
    model: Any, student: tuple[Any, Any], data: _Provisioned, prepared: Any, probs: Any
) -> dict[str, Any]:
    """What model.evaluate returns on the student's own test arrays; and, when those images are the provisioned
    ones (prepared in any way that scales and shifts every pixel alike), the model's accuracy on them against
    the provisioned labels. `probs` are the model's outputs on `prepared`, the grader's own preparation of the
    test images (None if it failed)."""
    import numpy as np

    x, y = student
    found: dict[str, Any] = {}
    if _comparable(model, {}):
        found["student_data_result"] = _evaluated(model, x, y)
    if _same_images(x, data.x_test):
        # The student's images, as the student prepared them: a model trained on raw pixels is measured on raw
        # pixels. The grader's preparation's outputs serve when the arrays are the same.
        same = probs is not None and x.shape == prepared.shape and np.array_equal(x.astype("float32"), prepared)
        outputs = probs if same else _probabilities(model, x)
        found["student_data_accuracy"] = float((outputs.argmax(axis=1) == data.y_test).mean())
    return found


def _same_images(x: Any, raw: Any) -> bool:
    """Whether `x` holds the provisioned images `raw`, in order, each pixel scaled and shifted alike (raw, divided
    by 255, standardized, mapped to [-1, 1]): a * raw + b for one a != 0 and one b."""
    import numpy as np

    if x.size != raw.size or len(x) != len(raw) or x.dtype.kind not in "biuf" or not raw.size:
        return False
    flat_x, flat_raw = x.reshape(-1), raw.reshape(-1)
    low, high = int(flat_raw.argmin()), int(flat_raw.argmax())
    if flat_raw[low] == flat_raw[high]:
        return False
    a = (float(flat_x[high]) - float(flat_x[low])) / (float(flat_raw[high]) - float(flat_raw[low]))
    b = float(flat_x[low]) - a * float(flat_raw[low])
    if a == 0 or not math.isfinite(a) or not math.isfinite(b):
        return False
    tolerance = 1e-5 * (abs(a) * float(flat_raw[high]) + abs(b)) + 1e-6
    # In blocks: the whole training set at once would take several temporary copies of hundreds of MB.
    for start in range(0, len(x), 4096):
        block = np.asarray(x[start : start + 4096], dtype=np.float64).reshape(-1)
        expected = raw[start : start + 4096].astype(np.float64).reshape(-1) * a + b
        if np.abs(block - expected).max(initial=0) > tolerance:
            return False
    return True


def _validation(model: Any, data: _Provisioned, request: dict[str, Any], with_loss: bool) -> dict[str, Any] | None:
    """The model's loss (unless the notebook's own code computes it: `with_loss`) and metrics on the validation
    split that Keras took from the provisioned training set."""
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
    values = _evaluated_by_name(model, x.reshape(len(x), *shape), y)
    finite = {key: value for key, value in values.items() if math.isfinite(value) and (with_loss or key != "loss")}
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
    """The metrics of every output, in order (compile takes a list, or a dict or list per output), as objects or
    as their saved configs (a dict with a "class_name" is one metric)."""
    if value is None:
        return []
    if isinstance(value, list | tuple):
        return [m for item in value for m in _flat(item)]
    if isinstance(value, dict) and "class_name" not in value:
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
