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
import os
import sys
from typing import Any

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
# Keras imports scikit-learn and pandas when they are installed (the homework environment has them), for wrappers
# and data adapters a saved model never needs: refused here, the import takes about 1 s less CPU.
for _unused in ("sklearn", "pandas"):
    sys.modules.setdefault(_unused, None)  # type: ignore[arg-type]

from .measure import measure  # noqa: E402  (TensorFlow reads its log level once, when first imported)
from .model_outputs import evaluated, probabilities  # noqa: E402
from .provisioned import Provisioned, load_dataset  # noqa: E402
from .saved_model import load  # noqa: E402


def _warm_up(data: Provisioned) -> None:
    """Puts a tiny model through a direct call and a compiled loss and metric, so that TensorFlow's one-time
    set-up (thread pools, kernels) is done before the grader waits for an answer."""
    import keras
    import numpy as np

    sample = data.x_test[:8].astype("float32")
    model = keras.Sequential([keras.Input(shape=sample.shape[1:]), keras.layers.Flatten(), keras.layers.Dense(10)])
    model.compile(loss="categorical_crossentropy", metrics=["categorical_accuracy"])
    probabilities(model, sample)
    evaluated(model, sample, np.eye(10, dtype="float32")[: len(sample)])


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
    data: Provisioned | Exception
    try:
        data = load_dataset(dataset)
    except Exception as exc:  # reported after "go", like any other failure here
        data = exc
    if not isinstance(data, Exception):
        with contextlib.suppress(Exception):  # only a head start: the evaluation reports its own errors
            _warm_up(data)
    sys.stdin.readline()
    try:
        if isinstance(data, Exception):
            raise data
        result, model = load(run_dir)
        # How the student prepared the training data is known once the grader has read the kernel's facts: it
        # comes after "go", while the model loads.
        request = _request(sys.stdin.readline())
        if model is not None:
            measure(result, model, run_dir, data, request)
    except Exception as exc:  # reported as data: the grader turns it into a check message
        result = {"ok": False, "message": f"re-evaluation failed: {type(exc).__name__}: {exc}"[:400]}
    print(json.dumps(result), flush=True)
    # The answer is out and the sandbox goes next: skip TensorFlow's interpreter teardown (most of a
    # second, during which the grader would wait for this process to end).
    os._exit(0)


if __name__ == "__main__":
    main()
