"""The student's saved model loaded in the re-evaluation without the notebook's code, and what it is.

Loaded with `safe_mode=True`, so a saved Lambda layer cannot run code; a compiled loss or metric that is the
notebook's own is left out (`unrestored`), and what depends on it is not measured.
"""

from __future__ import annotations

import contextlib
import json
import os
import stat
import zipfile
from typing import Any

from . import run_files
from .keras_identity import (
    compile_objects,
    identity,
    layer_facts,
    learning_rate,
    optimizer_name,
    optimizer_steps,
    resolved_identity,
    weights_digest,
)

_MAX_METRICS = 20
# Why a model that does not load cannot be verified, and what makes it loadable.
_LOADABLE = (
    " The grader re-loads the saved model in a fresh process without the notebook's code, so a custom layer, "
    "constraint or initializer cannot be re-created there: build the model from Keras's own classes "
    "(e.g. keras.constraints.MaxNorm), so that keras.saving.load_model can load it without custom_objects."
)


def regular_file(path: str) -> bool:
    """The kernel wrote this folder: a link or a FIFO in place of a file is treated as no file."""
    try:
        return stat.S_ISREG(os.lstat(path).st_mode)
    except OSError:
        return False


def load(run_dir: str) -> tuple[dict[str, Any], Any]:
    """The saved model and what it is (structure, weights, compile config); the model is None if it did not load."""
    import keras

    model_path = os.path.join(run_dir, run_files.MODEL)
    if not regular_file(model_path):
        return {"ok": False, "message": "no trained model was saved (no Keras model was found in the notebook)"}, None
    unrestored: list[str] = []
    try:
        model, whole = keras.saving.load_model(model_path, safe_mode=True), True
    except Exception as exc:
        model, whole = _uncompiled(model_path, unrestored), False
        if model is None:
            return {"ok": False, "message": f"the saved model could not be loaded: {_cause(exc)}.{_LOADABLE}"}, None
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
        result["compiled"] = compile_facts(model) if whole else None
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


def compile_facts(model: Any) -> dict[str, Any] | None:
    """The loss, metrics and optimizer of the model's compile config, each by what it is, not what it is named."""
    import keras

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
    if isinstance(metric, str):  # Keras's own name for what it resolves the string to
        return {"name": metric[:100], "identity": identity(metric, "metric"), "name_identity": None}
    name = str(getattr(metric, "name", ""))[:100]
    return {"name": name, "identity": identity(metric, "metric"), "name_identity": resolved_identity(name, "metric")}
