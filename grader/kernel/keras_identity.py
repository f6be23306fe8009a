"""Keras losses, optimizers, metrics and layers named by what they are, the same way by the probe and by
the re-evaluation."""

from __future__ import annotations

import functools
import hashlib
import inspect
from typing import Any

import keras
import numpy as np

from .keras_spelling import ACCURACY_STRINGS, snake_case
from .plain import MAX_CONFIG, NOT_PLAIN, guarded, plain

# Layer configuration that says nothing about what the layer computes.
_UNCONFIGURED = ("name", "trainable", "dtype")


def _canonical(obj: Any) -> str | None:
    """An activation or other function as one lower-case snake_case name."""
    if obj is None:
        return None
    if isinstance(obj, str):
        return obj.strip().lower()
    name = getattr(obj, "name", None)
    if not isinstance(name, str) or not name:
        name = getattr(obj, "__name__", None) or type(obj).__name__
    return snake_case(name)


# Config keys that label a loss or metric without changing what it computes.
_LABEL_KEYS = ("name", "dtype")


def _qualified(thing: Any, name: str) -> str:
    """Keras's own classes and functions by their snake_case name; anything else with its module."""
    module = getattr(thing, "__module__", None) or ""
    return snake_case(name) if module == "keras" or module.startswith("keras.") else f"{module}.{name}"


def _config_difference(obj: Any) -> str:
    """The configuration that differs from the class's defaults, e.g. "(k=10)"; empty when none does."""
    try:
        config = dict(obj.get_config())
    except Exception:
        return ""
    try:
        default = dict(type(obj)().get_config())
    except Exception:
        default = {}
    missing = object()
    changed = [
        f"{key}={value!r}"
        for key, value in sorted(config.items())
        if key not in _LABEL_KEYS and default.get(key, missing) != value
    ]
    return f"({', '.join(changed)})" if changed else ""


def identity(obj: Any, kind: str) -> str | None:
    """What a loss (`kind` "loss") or metric ("metric") computes: its class or function and the configuration
    that differs from the defaults, e.g. "top_k_categorical_accuracy(k=10)". Never its display name, which any
    metric accepts as an argument.

    A string is resolved as `compile` resolves it, except "accuracy" and "acc", whose kind `compile` picks from
    the labels: they stay "accuracy".
    """
    if obj is None:
        return None
    if isinstance(obj, str):
        return resolved_identity(obj, kind) or obj.strip().lower()
    cls = type(obj)
    try:
        wrapped = getattr(obj, "_fn" if kind == "metric" else "fn", None)
        if cls.__name__ in ("MeanMetricWrapper", "LossFunctionWrapper") and callable(wrapped):
            return identity(wrapped, kind)
        if inspect.isfunction(obj) or inspect.isbuiltin(obj):
            return _qualified(obj, getattr(obj, "__name__", "function"))
        return (_qualified(cls, cls.__name__) + _config_difference(obj))[:200]
    except Exception:  # a notebook's own class that breaks inspection is still not Keras's
        return f"{cls.__module__}.{cls.__qualname__}"[:200]


def resolved_identity(text: str, kind: str) -> str | None:
    """The identity of what Keras resolves `text` to as a loss or metric string; None when it resolves to nothing."""
    if text.strip().lower() in ACCURACY_STRINGS:
        return "accuracy"
    try:
        resolved = keras.metrics.get(text) if kind == "metric" else keras.losses.get(text)
    except Exception:
        return None
    return None if resolved is None or isinstance(resolved, str) else identity(resolved, kind)


def keras_object(obj: Any, kind: str) -> dict[str, Any] | None:
    """`grader.facts.KerasObject` of a loss ("loss"), metric ("metric") or optimizer ("optimizer") as compile got
    it: a string resolved as compile resolves it, a class by its configuration, a function by its keyword
    defaults (a wrapper around a function as that function with the wrapper's settings)."""
    if obj is None:
        return None
    if isinstance(obj, str):
        text = obj.strip().lower()
        if kind == "metric" and text in ACCURACY_STRINGS:
            return {"name": "accuracy", "settings": {}}
        getter = {"loss": keras.losses.get, "metric": keras.metrics.get, "optimizer": keras.optimizers.get}[kind]
        try:
            resolved = getter(obj)
        except Exception:
            resolved = None
        if resolved is None or isinstance(resolved, str):
            return {"name": text, "settings": {}}
        obj = resolved
    if inspect.isfunction(obj) or inspect.isbuiltin(obj):
        defaults = {
            key: plain(p.default) for key, p in inspect.signature(obj).parameters.items() if p.default is not p.empty
        }
        name = _qualified(obj, getattr(obj, "__name__", "function"))
        return {"name": name, "settings": {k: v for k, v in defaults.items() if v is not NOT_PLAIN}}
    cls, config = type(obj), guarded(lambda: dict(obj.get_config()), {})
    wrapped = getattr(obj, "_fn" if kind == "metric" else "fn", None)
    if cls.__name__ in ("MeanMetricWrapper", "LossFunctionWrapper") and callable(wrapped):
        inner = keras_object(wrapped, kind) or {"settings": {}}
        return {**inner, "settings": {**inner["settings"], **_plain_settings(config)}}
    return {"name": _qualified(cls, cls.__name__), "settings": _plain_settings(config)}


def _plain_settings(config: dict[Any, Any]) -> dict[str, Any]:
    """A configuration's plain-data settings, without the ones that only label the object."""
    settings = {str(key)[:100]: plain(value) for key, value in list(config.items())[:MAX_CONFIG]}
    return {key: value for key, value in settings.items() if key not in _LABEL_KEYS and value is not NOT_PLAIN}


def compile_objects(loss: Any, optimizer: Any, metrics: list[Any]) -> dict[str, Any]:
    """The `loss_object`, `optimizer_object` and `metric_objects` of a compile call or of a saved model's compile
    config; also used by the re-evaluation."""
    return {
        "loss_object": guarded(lambda: keras_object(loss, "loss"), None),
        "optimizer_object": guarded(lambda: keras_object(optimizer, "optimizer"), None),
        "metric_objects": [
            found for found in (guarded(functools.partial(keras_object, m, "metric"), None) for m in metrics) if found
        ],
    }


def optimizer_name(opt: Any) -> str | None:
    if opt is None:
        return None
    if isinstance(opt, str):
        return opt.strip().lower()
    return type(opt).__name__.lower()


def learning_rate(opt: Any) -> float | None:
    lr = getattr(opt, "learning_rate", None)
    if lr is None:
        return None
    try:
        return round(float(np.asarray(keras.ops.convert_to_numpy(lr))), 10)
    except Exception:
        return None


def weights_digest(model: Any) -> str:
    digest = hashlib.sha1()
    try:
        for w in model.get_weights():
            digest.update(np.ascontiguousarray(w).tobytes())
    except Exception:
        return ""
    return digest.hexdigest()


def optimizer_steps(model: Any) -> int | None:
    """The optimizer's step counter; None when the model has no optimizer (never compiled)."""
    opt: Any = getattr(model, "optimizer", None)
    try:
        return int(np.asarray(keras.ops.convert_to_numpy(opt.iterations)))
    except Exception:
        return None


def shape_value(value: Any) -> list[int | None] | None:
    def dimension(v: Any) -> bool:
        return v is None or (isinstance(v, int | np.integer) and not isinstance(v, bool))

    if isinstance(value, tuple | list) and len(value) <= 10 and all(dimension(v) for v in value):
        return [None if v is None else int(v) for v in value]
    return None


def _layer_config(layer: Any) -> dict[str, Any]:
    """The layer's configuration reduced to plain data: scalars and flat lists (a kernel_size tuple becomes a
    list), the activation by its snake_case name; initializers and other nested objects are left out."""
    config: dict[str, Any] = {}
    for key, value in list(layer.get_config().items())[: MAX_CONFIG + len(_UNCONFIGURED)]:
        if key in _UNCONFIGURED or not isinstance(key, str):
            continue
        found = _canonical(getattr(layer, "activation", value)) if key == "activation" else plain(value)
        if found is not NOT_PLAIN:
            config[key[:100]] = found
    return config


def layer_facts(model: Any) -> list[dict[str, Any]]:
    """The layers after the input, as the facts schema describes them; also used by the re-evaluation."""
    layers = []
    for layer in model.layers[:50]:
        try:
            output_shape = shape_value(tuple(layer.output.shape))
        except Exception:
            output_shape = None
        layers.append(
            {
                "class_name": type(layer).__name__,
                "config": guarded(functools.partial(_layer_config, layer), {}),
                "output_shape": output_shape,
                "params": int(layer.count_params()) if layer.built else 0,
            }
        )
    return layers
