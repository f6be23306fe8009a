"""Re-evaluates a student's saved model in a fresh process, away from anything the student's code touched.

Usage: python -m grader_kernel.reevaluate RUN_DIR DATASET_NPZ. Prints one JSON object on the last line
of stdout. The model is loaded with `safe_mode=True`, so a saved Lambda layer cannot run code here.
"""

from __future__ import annotations

import json
import os
import stat
import sys
from typing import Any

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def _regular_file(path: str) -> bool:
    """The kernel wrote this folder: a link or a FIFO in place of a file is treated as no file."""
    try:
        return stat.S_ISREG(os.lstat(path).st_mode)
    except OSError:
        return False


def _reevaluate(run_dir: str, dataset: str) -> dict[str, Any]:
    import keras
    import numpy as np

    model_path = os.path.join(run_dir, "model.keras")
    if not _regular_file(model_path):
        return {"ok": False, "message": "no trained model was saved (no `model` variable at the end)"}
    try:
        model = keras.saving.load_model(model_path, safe_mode=True)
    except Exception as exc:
        return {"ok": False, "message": f"the saved model could not be loaded: {type(exc).__name__}: {exc}"[:400]}
    from .probe import layer_facts

    result: dict[str, Any] = {"ok": True, "message": ""}
    try:
        result["layers"] = layer_facts(model)
        result["total_params"] = int(model.count_params())
    except Exception:
        result["layers"], result["total_params"] = None, None
    try:
        result["optimizer_iterations"] = int(keras.ops.convert_to_numpy(model.optimizer.iterations))
    except Exception:
        result["optimizer_iterations"] = None
    with np.load(dataset) as data:
        x_test, y_test = data["x_test"], data["y_test"]
    x = np.expand_dims(x_test.astype("float32") / 255.0, -1)
    try:
        probs = np.asarray(model.predict(x, batch_size=1024, verbose=0), dtype="float64")
        probs = probs.reshape(len(x), -1)
        result["accuracy"] = float((probs.argmax(axis=1) == y_test).mean())
        picked = np.clip(probs[np.arange(len(y_test)), y_test], 1e-7, 1.0)
        result["loss"] = float(-np.log(picked).mean())
    except Exception as exc:
        result["message"] = f"the model cannot classify 28x28x1 images: {type(exc).__name__}: {exc}"[:400]
    student_path = os.path.join(run_dir, "student_test.npz")
    if _regular_file(student_path) and getattr(model, "compiled", False):
        try:
            with np.load(student_path, allow_pickle=False) as data:
                values = model.evaluate(data["x"], data["y"], batch_size=1024, verbose=0)
            result["student_data_result"] = [float(v) for v in np.asarray(values, dtype=float).ravel()]
        except Exception as exc:
            result["message"] = (
                result["message"] + f" evaluate on the student's test arrays failed: {type(exc).__name__}: {exc}"
            )[:600]
    return result


def main() -> None:
    run_dir, dataset = sys.argv[1], sys.argv[2]
    # Import first, then wait: the grader starts this process beside the kernel and says "go" on stdin
    # once the model is saved, so these imports overlap the notebook's run.
    import keras  # noqa: F401
    import numpy  # noqa: F401

    sys.stdin.readline()
    try:
        result = _reevaluate(run_dir, dataset)
    except Exception as exc:  # reported as data: the grader turns it into a check message
        result = {"ok": False, "message": f"re-evaluation failed: {type(exc).__name__}: {exc}"[:400]}
    print(json.dumps(result))


if __name__ == "__main__":
    main()
