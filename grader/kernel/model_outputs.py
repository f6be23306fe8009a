"""What a model computes on arrays in the re-evaluation: its outputs by direct calls, evaluate's results and
the cross-entropy of its predictions."""

from __future__ import annotations

from typing import Any

_BATCH = 1024  # images per forward pass
_EVALUATE_BATCH = 32  # Keras's default for evaluate, which a notebook's evaluate uses unless told otherwise


def probabilities(model: Any, x: Any) -> Any:
    """The model's outputs, one row per sample, as `model.predict(x, batch_size=_BATCH)` gives them, by calling
    the model on each batch directly: predict and evaluate trace a tf.function and set up an input pipeline
    for every new model, which costs more than one pass over arrays this small."""
    import keras
    import numpy as np

    batches = [keras.ops.convert_to_numpy(model(x[i : i + _BATCH], training=False)) for i in range(0, len(x), _BATCH)]
    return np.concatenate([np.asarray(b, dtype="float32").reshape(len(b), -1) for b in batches])


def evaluated(model: Any, x: Any, y: Any) -> list[float]:
    """What model.evaluate(x, y) returns, in its order: the loss, then the compiled metrics."""
    values = model.evaluate(x, y, batch_size=_EVALUATE_BATCH, verbose=0)
    return [float(v) for v in (values if isinstance(values, list | tuple) else [values])]


def evaluated_by_name(model: Any, x: Any, y: Any) -> dict[str, float]:
    """What model.evaluate(x, y, return_dict=True) returns: "loss" and each compiled metric by name."""
    measured: dict[str, float] = {}
    for key, value in model.evaluate(x, y, batch_size=_EVALUATE_BATCH, verbose=0, return_dict=True).items():
        try:
            measured[str(key)[:100]] = float(value)
        except (TypeError, ValueError):
            continue  # a metric with several values (per class): nothing in a history to compare it with
    return measured


def cross_entropy(outputs: Any, labels: Any) -> float:
    """The cross-entropy of the model's predicted distribution: its outputs, or their softmax when they are
    logits (rows that are not probabilities)."""
    import numpy as np

    probs = outputs.astype("float64")
    if not (np.all(probs >= 0) and np.allclose(probs.sum(axis=1), 1.0, atol=1e-3)):
        shifted = np.exp(probs - probs.max(axis=1, keepdims=True))
        probs = shifted / shifted.sum(axis=1, keepdims=True)
    picked = np.clip(probs[np.arange(len(labels)), labels], 1e-7, 1.0)
    return float(-np.log(picked).mean())
