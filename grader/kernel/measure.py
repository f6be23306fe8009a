"""The re-evaluation's measurements of a loaded model: accuracy on the provisioned test set, evaluate on it, on
the student's test arrays and on the validation split rebuilt from the provisioned training set."""

from __future__ import annotations

import math
import os
from typing import Any

from . import run_files
from .keras_identity import identity
from .model_outputs import cross_entropy, evaluated, evaluated_by_name, probabilities
from .provisioned import Provisioned, prepared_test_images, same_images
from .saved_model import regular_file


def measure(result: dict[str, Any], model: Any, run_dir: str, data: Provisioned, request: dict[str, Any]) -> None:
    """Adds the model's accuracy and loss on the provisioned test set (in its own input format, scaled as its
    training data was), evaluate's results on the provisioned test set and on the student's test arrays, and
    on the validation split."""

    problems: list[str] = []
    x = prepared_test_images(model, data, request.get("x_scaled") is not False)
    try:
        probs = probabilities(model, x)
        result["accuracy"] = float((probs.argmax(axis=1) == data.y_test).mean())
        result["loss"] = cross_entropy(probs, data.y_test)
    except Exception as exc:
        probs = None
        shape = "x".join(str(n) for n in x.shape[1:])
        problems.append(f"the model cannot classify {shape} test images: {type(exc).__name__}: {exc}")
    student = _student_arrays(os.path.join(run_dir, run_files.STUDENT_TEST), problems)
    if student is not None:
        try:
            result.update(student_data(model, student, data, x, probs))
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
            result["validation"] = validation_values(
                model, data, validation, "loss" not in result.get("unrestored", [])
            )
        except Exception as exc:
            problems.append(f"evaluate on the validation split failed: {type(exc).__name__}: {exc}")
    result["message"] = " ".join(problems)[:600]


def _comparable(model: Any, result: dict[str, Any]) -> bool:
    """Whether evaluate here returns what the notebook's evaluate returned: compiled with all its own loss and
    metrics."""
    return bool(getattr(model, "compiled", False)) and not result.get("unrestored")


def _student_arrays(path: str, problems: list[str]) -> tuple[Any, Any] | None:
    """The student's test images and labels as the kernel saved them; None when there are none."""
    import numpy as np

    if not regular_file(path):
        return None
    try:
        with np.load(path, allow_pickle=False) as saved:
            return saved["x"], saved["y"]
    except Exception as exc:
        problems.append(f"the student's test arrays could not be read: {type(exc).__name__}: {exc}")
        return None


def _test_result(
    model: Any, data: Provisioned, prepared: Any, student: tuple[Any, Any] | None, found: dict[str, Any]
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
    return evaluated(model, student[0] if own and student is not None else prepared, labels)


def _labels_like(model: Any, data: Provisioned, student_y: Any) -> Any:
    """The provisioned test labels, one-hot or class ids as the student's labels are, else as the compiled loss
    expects them (class ids for a sparse loss)."""
    import numpy as np

    labels = data.y_test
    if student_y is not None and student_y.shape[:1] == labels.shape:
        if student_y.ndim == 2 and student_y.shape[1] == data.classes:
            return np.eye(data.classes, dtype="float32")[labels]
        if student_y.size == labels.size:
            return labels.reshape(student_y.shape)
    if "sparse" in (identity(getattr(model, "loss", None), "loss") or "sparse"):
        return labels
    return np.eye(data.classes, dtype="float32")[labels]


def student_data(model: Any, student: tuple[Any, Any], data: Provisioned, prepared: Any, probs: Any) -> dict[str, Any]:
    """What model.evaluate returns on the student's own test arrays; and, when those images are the provisioned
    ones (prepared in any way that scales and shifts every pixel alike), the model's accuracy on them against
    the provisioned labels. `probs` are the model's outputs on `prepared`, the grader's own preparation of the
    test images (None if it failed)."""
    import numpy as np

    x, y = student
    found: dict[str, Any] = {}
    if _comparable(model, {}):
        found["student_data_result"] = evaluated(model, x, y)
    if same_images(x, data.x_test):
        # The student's images, as the student prepared them: a model trained on raw pixels is measured on raw
        # pixels. The grader's preparation's outputs serve when the arrays are the same.
        same = probs is not None and x.shape == prepared.shape and np.array_equal(x.astype("float32"), prepared)
        outputs = probs if same else probabilities(model, x)
        found["student_data_accuracy"] = float((outputs.argmax(axis=1) == data.y_test).mean())
    return found


def validation_values(model: Any, data: Provisioned, request: dict[str, Any], with_loss: bool) -> dict[str, Any] | None:
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
    values = evaluated_by_name(model, x.reshape(len(x), *shape), y)
    finite = {key: value for key, value in values.items() if math.isfinite(value) and (with_loss or key != "loss")}
    return {"validation_split": split, "n_samples": n - start, "values": finite}
