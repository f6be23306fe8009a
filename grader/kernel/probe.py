"""Recording hooks and fact collection: the grader code that runs inside the student's kernel.

The grader runs `install` before the first student cell, `begin_cell`/`end_cell` around each cell and
`finish` at the end. Every `end_cell` rewrites `facts.json` in the output directory, so a kernel that dies
later loses only what came after. Only plain JSON leaves this module; the grader decodes it strictly and
cross-checks what decides points against objects it inspects itself (the saved model, re-evaluated in a
fresh process). References to everything this module relies on are captured at `install`, before any
student code runs, so a student who replaces `np.save`, `json.dump` or `print` changes nothing here.

Standard library, numpy, keras and matplotlib only: this package never imports the rest of `grader`.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import inspect
import json
import os
import re
import sys
from collections.abc import Callable
from typing import Any

import keras
import numpy as np

_TRACKED_METHODS = ("fit", "evaluate", "compile", "summary")
_MAX_LIST = 1000


class _State:
    """Everything the probe knows; one instance per kernel."""

    def __init__(self, dataset_path: str, out_dir: str) -> None:
        self.dataset_path = dataset_path
        self.out_dir = out_dir
        self.cell = 0
        self.summary_calls = 0
        self.compile_calls: list[dict[str, Any]] = []
        self.fit_calls: list[dict[str, Any]] = []
        self.evaluate_calls: list[dict[str, Any]] = []
        self.fit_results: list[Any] = []  # History objects returned by recorded fits
        self.fit_depth = 0  # fit runs evaluate for its validation data: those calls are not the student's
        self.figures: dict[int, dict[str, Any]] = {}
        self.array_cache: dict[tuple[Any, ...], dict[str, Any]] = {}
        self.hooks: dict[str, Any] = {}
        self.originals: dict[str, Any] = {}
        # Captured before student code runs: the student may replace any of these later.
        self.np_array_equal = np.array_equal
        self.json_dumps = json.dumps
        self.os_replace = os.replace
        self.open = open
        self.save_model = keras.saving.save_model
        self.np_savez = np.savez
        self.model_cls = keras.Model
        self.sequential_cls = keras.Sequential

    # Loaded on first use (the student's load_data, or facts about arrays), not at install: a notebook
    # pays for decompressing the data once, as it would without the grader.
    @functools.cached_property
    def x_train(self) -> Any:
        return self._data["x_train"]

    @functools.cached_property
    def y_train(self) -> Any:
        return self._data["y_train"]

    @functools.cached_property
    def x_test(self) -> Any:
        return self._data["x_test"]

    @functools.cached_property
    def y_test(self) -> Any:
        return self._data["y_test"]

    @functools.cached_property
    def _data(self) -> dict[str, Any]:
        with np.load(self.dataset_path) as data:
            return {key: np.array(data[key]) for key in ("x_train", "y_train", "x_test", "y_test")}


_state: _State | None = None


def _st() -> _State:
    if _state is None:
        raise RuntimeError("probe not installed")
    return _state


# ---------------------------------------------------------------------------------------------- install


def install(dataset_path: str, out_dir: str) -> None:
    """Provisions the data and puts the recording hooks in place."""
    global _state
    _state = _State(dataset_path, out_dir)
    _patch_load_data()
    _wrap_model_methods()
    _hook_figures()
    _write(_collect())


def _load_data(path: str | None = None) -> tuple[tuple[Any, Any], tuple[Any, Any]]:
    st = _st()
    return (st.x_train.copy(), st.y_train.copy()), (st.x_test.copy(), st.y_test.copy())


def _patch_load_data() -> None:
    """Makes every importable `...datasets.mnist.load_data` return the provisioned arrays."""
    for name, module in list(sys.modules.items()):
        if name.endswith("datasets.mnist") and getattr(module, "load_data", None) not in (None, _load_data):
            module.load_data = _load_data  # type: ignore[attr-defined]


def _canonical(obj: Any) -> str | None:
    """An activation or other function as one lower-case snake_case name."""
    if obj is None:
        return None
    if isinstance(obj, str):
        return obj.strip().lower()
    name = getattr(obj, "name", None)
    if not isinstance(name, str) or not name:
        name = getattr(obj, "__name__", None) or type(obj).__name__
    return re.sub(r"(?<!^)(?=[A-Z])", "_", name).lower() if not name.islower() else name


_ACCURACY_STRINGS = ("accuracy", "acc")
# Config keys that label a loss or metric without changing what it computes.
_LABEL_KEYS = ("name", "dtype")


def _snake(name: str) -> str:
    return re.sub(r"(?<=[a-z0-9])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])", "_", name).lower()


def _qualified(thing: Any, name: str) -> str:
    """Keras's own classes and functions by their snake_case name; anything else with its module."""
    module = getattr(thing, "__module__", None) or ""
    return _snake(name) if module == "keras" or module.startswith("keras.") else f"{module}.{name}"


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
    if text.strip().lower() in _ACCURACY_STRINGS:
        return "accuracy"
    try:
        resolved = keras.metrics.get(text) if kind == "metric" else keras.losses.get(text)
    except Exception:
        return None
    return None if resolved is None or isinstance(resolved, str) else identity(resolved, kind)


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


def _error_text(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}"[:500]


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


def _fingerprint(value: Any) -> str:
    """Identifies an array by content, so calls and variables can be matched without keeping copies."""
    try:
        arr = np.ascontiguousarray(value)
    except Exception:
        return ""
    if arr.dtype == object:
        return ""
    return f"{arr.shape}|{arr.dtype.str}|{hashlib.sha1(arr.tobytes()).hexdigest()}"


def _floats(value: Any) -> list[float] | None:
    try:
        arr = np.asarray(value, dtype=float).ravel()
    except Exception:
        return None
    if arr.size == 0 or arr.size > 100:
        return None
    return [float(v) for v in arr]


def _wrap_model_methods() -> None:
    st = _st()
    model_cls = st.model_cls
    for name in _TRACKED_METHODS:
        st.originals[name] = getattr(model_cls, name)
    signatures = {name: inspect.signature(st.originals[name]) for name in _TRACKED_METHODS}

    def bind(name: str, args: tuple[Any, ...], kwargs: dict[str, Any]) -> tuple[dict[str, Any], list[str]]:
        params = signatures[name].parameters
        unknown = [k for k in kwargs if k not in params]
        known = {k: v for k, v in kwargs.items() if k in params}
        try:
            bound = signatures[name].bind_partial(*args, **known)
        except TypeError:
            return {}, unknown
        return dict(bound.arguments), unknown

    def compile(self: Any, *args: Any, **kwargs: Any) -> Any:
        call, _ = bind("compile", (self, *args), kwargs)
        metrics = call.get("metrics") or []
        if not isinstance(metrics, list | tuple):
            metrics = [metrics]
        optimizer = call.get("optimizer", "rmsprop")
        record: dict[str, Any] = {
            "loss": identity(call.get("loss"), "loss"),
            "optimizer": optimizer_name(optimizer),
            "learning_rate": learning_rate(optimizer) if not isinstance(optimizer, str) else None,
            "metrics": [m for m in (identity(m, "metric") for m in metrics) if m],
            "error": None,
        }
        try:
            return st.originals["compile"](self, *args, **kwargs)
        except BaseException as exc:
            record["error"] = _error_text(exc)
            raise
        finally:
            st.compile_calls.append(record)

    def fit(self: Any, *args: Any, **kwargs: Any) -> Any:
        call, unknown = bind("fit", (self, *args), kwargs)
        record: dict[str, Any] = {
            "batch_size": _int_or_none(call.get("batch_size")),
            "epochs": _int_or_none(call.get("epochs", 1)),
            "validation_split": _float_or_none(call.get("validation_split", 0.0)),
            **_fit_data(call.get("x"), call.get("y")),
            "iterations_before": optimizer_steps(self),
            "unknown_arguments": unknown,
            "error": None,
        }
        before = weights_digest(self)
        history = None
        st.fit_depth += 1
        try:
            history = st.originals["fit"](self, *args, **kwargs)
            st.fit_results.append(history)
            return history
        except BaseException as exc:
            record["error"] = _error_text(exc)
            raise
        finally:
            st.fit_depth -= 1
            done = history if history is not None else getattr(self, "history", None)
            record["completed_epochs"] = len(getattr(done, "epoch", []) or [])
            record["history_keys"] = sorted(getattr(done, "history", {}) or {})
            record["iterations_after"] = optimizer_steps(self)
            record["weights_after"] = weights_digest(self)
            record["weights_changed"] = bool(before) and record["weights_after"] != before
            st.fit_calls.append(record)

    def evaluate(self: Any, *args: Any, **kwargs: Any) -> Any:
        if st.fit_depth:
            return st.originals["evaluate"](self, *args, **kwargs)
        call, _ = bind("evaluate", (self, *args), kwargs)
        record: dict[str, Any] = {
            "x_fingerprint": _fingerprint(call.get("x")),
            "y_fingerprint": _fingerprint(call.get("y")),
            "result": None,
            "error": None,
        }
        try:
            result = st.originals["evaluate"](self, *args, **kwargs)
            record["result"] = _floats(result)
            return result
        except BaseException as exc:
            record["error"] = _error_text(exc)
            raise
        finally:
            st.evaluate_calls.append(record)

    def summary(self: Any, *args: Any, **kwargs: Any) -> Any:
        st.summary_calls += 1
        return st.originals["summary"](self, *args, **kwargs)

    for name, wrapper in (("compile", compile), ("fit", fit), ("evaluate", evaluate), ("summary", summary)):
        wrapper.__name__ = name
        wrapper.__doc__ = st.originals[name].__doc__
        wrapper.__signature__ = signatures[name]  # type: ignore[attr-defined]
        st.hooks[name] = wrapper
        setattr(model_cls, name, wrapper)


def _fit_data(x: Any, y: Any) -> dict[str, Any]:
    """What a fit was given: how many samples, which notebook variables, which provisioned images and labels.

    Computed before training starts; the pixel comparisons are cached with the namespace's arrays, so a fit
    on `x_train` costs nothing extra.
    """
    return {
        "n_samples": _guarded(lambda: int(np.shape(x)[0]) if x is not None and np.ndim(x) > 0 else None, None),
        "x_variable": _guarded(lambda: _variable_of(x, ("x_train", "x_test")), ""),
        "y_variable": _guarded(lambda: _variable_of(y, ("y_train", "y_test")), ""),
        "x_pixels": _guarded(lambda: _pixels_of(x), ""),
        "y_labels": _guarded(lambda: _labels_of(y), ""),
        "x_sample_shape": _guarded(lambda: [int(n) for n in np.shape(x)[1:]][:10], None),
    }


def _variable_of(value: Any, names: tuple[str, ...]) -> str:
    """The first of `names` whose namespace variable is this very object; empty if none is."""
    if value is None:
        return ""
    ns = _namespace()
    return next((name for name in names if ns.get(name) is value), "")


def _pixels_of(x: Any) -> str:
    """Which provisioned images `x` holds, all of them in order: "train_scaled" (divided by 255), "train_raw",
    "test_scaled" or "test_raw"; empty when it holds anything else."""
    st = _st()
    size = np.size(x)
    for split, raw in (("train", st.x_train), ("test", st.x_test)):
        if size == raw.size:
            facts = _array_facts(x, split, "x")
            if facts.get("matches_scaled"):
                return f"{split}_scaled"
            if facts.get("matches_raw"):
                return f"{split}_raw"
    return ""


def _labels_of(y: Any) -> str:
    """Which provisioned labels `y` holds, all of them in order: "train_onehot", "train_sparse", "train_other"
    (the right classes, not strictly one-hot), or the same for "test"; empty when it holds anything else."""
    st = _st()
    rows = np.shape(y)[:1]
    for split, labels in (("train", st.y_train), ("test", st.y_test)):
        if rows == labels.shape[:1]:
            facts = _array_facts(y, split, "y")
            if facts.get("labels_match"):
                form = "sparse" if np.ndim(y) == 1 else "onehot" if facts.get("onehot") else "other"
                return f"{split}_{form}"
    return ""


def _int_or_none(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int | np.integer):
        return int(value)
    if isinstance(value, float | np.floating) and float(value).is_integer():
        return int(value)
    return None


def _float_or_none(value: Any) -> float | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float | np.integer | np.floating):
        return float(value)
    return None


# ---------------------------------------------------------------------------------------------- figures


def _hook_figures() -> None:
    """Records every figure that gets rendered: the inline backend renders what `plt.show` shows."""
    from matplotlib.backend_bases import FigureCanvasBase

    st = _st()
    original = FigureCanvasBase.print_figure
    st.originals["print_figure"] = original

    def print_figure(self: Any, *args: Any, **kwargs: Any) -> Any:
        with contextlib.suppress(Exception):
            st.figures[id(self.figure)] = _figure_facts(self.figure)
        return original(self, *args, **kwargs)

    st.hooks["print_figure"] = print_figure
    FigureCanvasBase.print_figure = print_figure  # type: ignore[method-assign]


def _figure_facts(fig: Any) -> dict[str, Any]:
    st = _st()
    candidates = _indices_value(_namespace().get("indices"))[0] or []
    panels = []
    nrows = ncols = None
    for ax in fig.axes:
        if not ax.images:
            continue
        spec = ax.get_subplotspec()
        row = col = -1
        if spec is not None:
            nrows, ncols = spec.get_geometry()[:2]
            row, col = divmod(spec.num1, ncols)
        image = np.asarray(ax.images[-1].get_array())
        matched = _match_image(image, candidates)
        panels.append(
            {
                "row": int(row),
                "col": int(col),
                "title": ax.get_title()[:200],
                "image_shape": [int(n) for n in image.shape],
                "matched_index": matched,
                "true_label": int(st.y_train[matched]) if matched is not None else None,
            }
        )
    return {"cell": st.cell, "nrows": nrows, "ncols": ncols, "panels": panels[:50]}


def _match_image(image: Any, candidates: list[int]) -> int | None:
    """The x_train index whose pixels the image shows, raw or scaled to [0, 1]; None if none does."""
    st = _st()
    pixels = np.asarray(image, dtype=float).squeeze()
    if pixels.shape != st.x_train.shape[1:]:
        return None
    scale = 255.0 if pixels.max(initial=0) <= 1.0 else 1.0
    target = pixels * scale
    for idx in candidates:
        if 0 <= idx < len(st.x_train) and np.allclose(st.x_train[idx], target, atol=0.51):
            return idx
    rounded = np.rint(target)
    if not np.allclose(rounded, target, atol=0.01):
        return None
    flat = st.x_train.reshape(len(st.x_train), -1)
    hits = np.flatnonzero((flat == rounded.reshape(-1).astype(flat.dtype)).all(axis=1))
    return int(hits[0]) if hits.size else None


# ---------------------------------------------------------------------------------------------- collect


def _namespace() -> dict[str, Any]:
    from IPython import get_ipython

    shell = get_ipython()
    return shell.user_ns if shell is not None else {}


def _array_facts(value: Any, split: str, kind: str) -> dict[str, Any]:
    if value is None:
        return {"present": False}
    if not isinstance(value, np.ndarray):
        try:
            value = np.asarray(value)
        except Exception:
            return {"present": True, "type_name": type(value).__name__}
    st = _st()
    key = (kind, split, id(value), value.__array_interface__["data"][0], value.shape, value.dtype.str, _sample(value))
    cached = st.array_cache.get(key)
    if cached is not None:
        return cached
    facts: dict[str, Any] = {
        "present": True,
        "type_name": type(value).__name__,
        "shape": [int(n) for n in value.shape],
        "dtype": str(value.dtype),
    }
    if value.dtype.kind in "biuf" and value.size:
        facts["min"] = float(np.nanmin(value))
        facts["max"] = float(np.nanmax(value))
        raw, labels = (st.x_train, st.y_train) if split == "train" else (st.x_test, st.y_test)
        if kind == "x" and value.size == raw.size:
            facts["matches_scaled"], facts["matches_raw"] = pixels_match(
                value.reshape(raw.shape), raw, st.np_array_equal
            )
        if kind == "y":
            if value.ndim == 2 and value.shape == (len(labels), 10):
                facts["onehot"] = bool(np.isin(value, (0, 1)).all() and (value.sum(axis=1) == 1).all())
                facts["labels_match"] = bool(st.np_array_equal(value.argmax(axis=1), labels))
            elif value.ndim == 1 and value.shape == labels.shape:
                facts["onehot"] = False
                facts["labels_match"] = bool(st.np_array_equal(value, labels))
    st.array_cache[key] = facts
    return facts


def pixels_match(pixels: Any, raw: Any, equal: Callable[[Any, Any], Any]) -> tuple[bool, bool]:
    """Whether the student's pixels equal the provisioned ones divided by 255, and whether they equal them raw;
    `pixels` has raw's shape. Also used by the re-evaluation, with its own `equal` (np.array_equal).

    Compared in float32 blocks: the whole training set at once would take several temporary copies of
    hundreds of MB, and most of a second per cell.
    """
    scaled = unscaled = True
    for start in range(0, len(raw), 4096):
        block = np.asarray(pixels[start : start + 4096], dtype=np.float32)
        expected = raw[start : start + 4096].astype(np.float32)
        unscaled = unscaled and bool(equal(block, expected))
        expected *= np.float32(1 / 255)
        scaled = scaled and bool(np.abs(block - expected).max(initial=0) <= 1e-5)
        if not (scaled or unscaled):
            break
    return scaled, unscaled


def _sample(value: Any) -> float:
    try:
        return float(np.asarray(value.ravel()[:: max(1, value.size // 997)], dtype=float).sum())
    except Exception:
        return 0.0


def _indices_value(value: Any) -> tuple[list[int] | None, str]:
    if value is None:
        return None, "not defined"
    try:
        arr = np.asarray(value)
    except Exception:
        return None, f"not an array of integers ({type(value).__name__})"
    if arr.dtype.kind not in "iu":
        return None, f"not integers (dtype {arr.dtype})"
    if arr.size > _MAX_LIST:
        return None, f"{arr.size} values"
    return [int(v) for v in arr.ravel()], "ok"


def _shape_value(value: Any) -> list[int | None] | None:
    def dimension(v: Any) -> bool:
        return v is None or (isinstance(v, int | np.integer) and not isinstance(v, bool))

    if isinstance(value, tuple | list) and len(value) <= 10 and all(dimension(v) for v in value):
        return [None if v is None else int(v) for v in value]
    return None


def layer_facts(model: Any) -> list[dict[str, Any]]:
    """The layers after the input, as the facts schema describes them; also used by the re-evaluation."""
    layers = []
    for layer in model.layers[:50]:
        activation = getattr(layer, "activation", None)
        try:
            output_shape = _shape_value(tuple(layer.output.shape))
        except Exception:
            output_shape = None
        layers.append(
            {
                "class_name": type(layer).__name__,
                "units": _int_or_none(getattr(layer, "units", None)),
                "activation": _canonical(activation) if activation is not None else None,
                "output_shape": output_shape,
                "params": int(layer.count_params()) if layer.built else 0,
            }
        )
    return layers


def _model_facts(model: Any) -> dict[str, Any]:
    st = _st()
    if not isinstance(model, st.model_cls):
        return {"present": model is not None, "class_name": type(model).__name__ if model is not None else ""}
    facts: dict[str, Any] = {
        "present": True,
        "class_name": type(model).__name__,
        "is_sequential": isinstance(model, st.sequential_cls),
        "built": bool(model.built),
        "optimizer": optimizer_name(getattr(model, "optimizer", None)),
        "learning_rate": learning_rate(getattr(model, "optimizer", None)),
        "loss": identity(getattr(model, "loss", None), "loss"),
        "optimizer_iterations": optimizer_steps(model),
    }
    try:
        facts["input_shape"] = _shape_value(tuple(model.input_shape))
    except Exception:
        facts["input_shape"] = None
    facts["layers"] = layer_facts(model)
    facts["total_params"] = int(model.count_params()) if model.built else 0
    return facts


def _history_facts(ns: dict[str, Any], model: Any) -> dict[str, Any] | None:
    st = _st()
    candidates = [v for v in ns.values() if _looks_like_history(v)]
    if model is not None and _looks_like_history(getattr(model, "history", None)):
        candidates.append(model.history)
    if not candidates:
        return None
    returned = [h for h in candidates if any(h is r for r in st.fit_results)]
    history = (returned or candidates)[-1]
    values = {
        str(k): [float(x) for x in list(v)[:_MAX_LIST]] for k, v in list(history.history.items())[:20] if _floats_ok(v)
    }
    return {
        "epochs": max((len(v) for v in values.values()), default=0),
        "keys": sorted(values),
        "values": values,
        "from_fit": bool(returned),
    }


def _looks_like_history(value: Any) -> bool:
    try:
        return isinstance(getattr(value, "history", None), dict) and not isinstance(value, type)
    except Exception:
        return False


def _floats_ok(values: Any) -> bool:
    try:
        [float(x) for x in list(values)[:_MAX_LIST]]
    except Exception:
        return False
    return True


def _score_facts(value: Any) -> dict[str, Any]:
    st = _st()
    if value is None:
        return {"present": False}
    floats = _floats(value)
    from_evaluate = floats is not None and any(
        call["result"] is not None
        and len(call["result"]) == len(floats)
        and all(abs(a - b) <= 1e-9 for a, b in zip(call["result"], floats, strict=True))
        for call in st.evaluate_calls
    )
    return {"present": True, "type_name": type(value).__name__, "value": floats, "from_evaluate": from_evaluate}


def _integrity(model: Any) -> dict[str, Any]:
    st = _st()
    owner = type(model) if isinstance(model, st.model_cls) else st.model_cls
    intact = {name: getattr(owner, name, None) is st.hooks[name] for name in _TRACKED_METHODS}
    from matplotlib.backend_bases import FigureCanvasBase

    intact["print_figure"] = FigureCanvasBase.print_figure is st.hooks["print_figure"]
    intact["load_data"] = all(
        getattr(m, "load_data", _load_data) is _load_data
        for n, m in list(sys.modules.items())
        if n.endswith("datasets.mnist")
    )
    overrides = []
    if model is not None:
        overrides = [n for n in (*_TRACKED_METHODS, "predict") if n in getattr(model, "__dict__", {})]
    return {"hooks_intact": intact, "instance_overrides": overrides}


def _guarded(compute: Callable[[], Any], default: Any) -> Any:
    """One fact; a student value that breaks its inspection yields the default, not a lost snapshot."""
    try:
        return compute()
    except Exception:
        return default


def _collect() -> dict[str, Any]:
    st = _st()
    ns = _namespace()
    model = ns.get("model")
    missing = {"present": False}
    indices, note = _guarded(lambda: _indices_value(ns.get("indices")), (None, "could not be read"))
    input_shape = ns.get("input_shape")
    facts: dict[str, tuple[Callable[[], Any], Any]] = {
        "x_train": (lambda: _array_facts(ns.get("x_train"), "train", "x"), missing),
        "x_test": (lambda: _array_facts(ns.get("x_test"), "test", "x"), missing),
        "y_train": (lambda: _array_facts(ns.get("y_train"), "train", "y"), missing),
        "y_test": (lambda: _array_facts(ns.get("y_test"), "test", "y"), missing),
        "input_shape": (lambda: _shape_value(input_shape), None),
        "input_shape_repr": (lambda: repr(input_shape)[:200] if "input_shape" in ns else "", "<unprintable>"),
        "model": (lambda: _model_facts(model), {"present": model is not None}),
        "history": (lambda: _history_facts(ns, model), None),
        "score": (lambda: _score_facts(ns.get("score")), {"present": "score" in ns}),
        "batch_size": (lambda: _int_or_none(ns.get("batch_size")), None),
        "epochs": (lambda: _int_or_none(ns.get("epochs")), None),
        "x_test_fingerprint": (lambda: _fingerprint(ns["x_test"]) if ns.get("x_test") is not None else "", ""),
        "y_test_fingerprint": (lambda: _fingerprint(ns["y_test"]) if ns.get("y_test") is not None else "", ""),
        "integrity": (lambda: _integrity(model), {"hooks_intact": {}, "instance_overrides": []}),
    }
    collected = {key: _guarded(compute, default) for key, (compute, default) in facts.items()}
    return {
        **collected,
        "indices": indices,
        "indices_note": note,
        "figures": list(st.figures.values())[-20:],
        "summary_calls": st.summary_calls,
        "compile_calls": st.compile_calls[-20:],
        "fit_calls": st.fit_calls[-20:],
        "evaluate_calls": st.evaluate_calls[-20:],
    }


def _write(facts: dict[str, Any]) -> None:
    st = _st()
    path = os.path.join(st.out_dir, "facts.json")
    tmp = path + ".tmp"
    with st.open(tmp, "w", encoding="utf-8") as fh:
        fh.write(st.json_dumps(facts))
    st.os_replace(tmp, path)


# ---------------------------------------------------------------------------------------------- cells


def begin_cell(index: int) -> None:
    """Called before student cell `index`; re-patches data loaders that a new import brought in."""
    _st().cell = index
    _patch_load_data()


def end_cell(index: int) -> None:
    """Called after student cell `index`: collects facts and writes them, replacing the previous ones."""
    _write(_collect())


def finish() -> None:
    """Final collection; saves the model and the student's test arrays for the grader's re-evaluation."""
    st = _st()
    ns = _namespace()
    model = ns.get("model")
    facts = _collect()
    if isinstance(model, st.model_cls) and model.built:
        try:
            st.save_model(model, os.path.join(st.out_dir, "model.keras"))
            facts["model"]["saved"] = True
        except Exception:
            facts["model"]["saved"] = False
        x_test, y_test = ns.get("x_test"), ns.get("y_test")
        with contextlib.suppress(Exception):
            st.np_savez(os.path.join(st.out_dir, "student_test.npz"), x=np.asarray(x_test), y=np.asarray(y_test))
    _write(facts)
