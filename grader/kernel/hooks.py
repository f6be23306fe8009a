"""Keras's compile, fit, evaluate, summary, model calls and the dataset loader, recorded as the notebook calls them."""

from __future__ import annotations

import inspect
import sys
from collections.abc import Callable
from typing import Any

from .arrays import origin
from .keras_identity import compile_objects, identity, learning_rate, optimizer_name, optimizer_steps, weights_digest
from .plain import NOT_PLAIN, as_array, floats, guarded, scalar, shape_of
from .rows import test_images_in
from .state import State, current
from .training import note_weights, training_start, watched

TRACKED_METHODS = ("fit", "evaluate", "compile", "summary")


def error_text(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}"[:500]


def provisioned_data(path: str | None = None) -> tuple[tuple[Any, Any], tuple[Any, Any]]:
    st = current()
    return (st.x_train.copy(), st.y_train.copy()), (st.x_test.copy(), st.y_test.copy())


def loader_modules() -> list[Any]:
    """Every imported `...datasets.<loader>` module (keras.datasets.mnist, keras.src.datasets.mnist, ...)."""
    tail = ["datasets", current().request["loader"]]
    return [module for name, module in list(sys.modules.items()) if module is not None and name.split(".")[-2:] == tail]


def patch_load_data() -> None:
    """Makes every importable `load_data` of the requested loader return the provisioned arrays."""
    for module in loader_modules():
        if getattr(module, "load_data", None) not in (None, provisioned_data):
            module.load_data = provisioned_data


Hook = Callable[..., Any]


def wrap_model_methods() -> None:
    """Puts a recording hook in place of each of keras.Model's `TRACKED_METHODS`."""
    st = current()
    model_cls = st.model_cls
    for name in TRACKED_METHODS:
        st.originals[name] = getattr(model_cls, name)
    signatures = {name: inspect.signature(st.originals[name]) for name in TRACKED_METHODS}
    hooks = (("compile", _compile_hook), ("fit", _fit_hook), ("evaluate", _evaluate_hook), ("summary", _summary_hook))
    for name, make in hooks:
        wrapper = make(st, signatures[name])
        wrapper.__name__ = name
        wrapper.__doc__ = st.originals[name].__doc__
        wrapper.__signature__ = signatures[name]  # type: ignore[attr-defined]
        st.hooks[name] = wrapper
        # On the class that defines the method, not keras.Model: Keras compiles a loaded model from its config
        # only when `compile` is not overridden below its trainer class, which a hook on keras.Model would be.
        st.owners[name] = next(cls for cls in model_cls.__mro__ if name in vars(cls))
        setattr(st.owners[name], name, wrapper)


def _bind(
    signature: inspect.Signature, args: tuple[Any, ...], kwargs: dict[str, Any]
) -> tuple[dict[str, Any], list[str]]:
    """A call's arguments by name, as the method's signature binds them, and the keywords it does not know."""
    params = signature.parameters
    unknown = [k for k in kwargs if k not in params]
    known = {k: v for k, v in kwargs.items() if k in params}
    try:
        bound = signature.bind_partial(*args, **known)
    except TypeError:
        return {}, unknown
    return dict(bound.arguments), unknown


def _compile_hook(st: State, signature: inspect.Signature) -> Hook:
    def compile(self: Any, *args: Any, **kwargs: Any) -> Any:
        call, _ = _bind(signature, (self, *args), kwargs)
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
            **compile_objects(call.get("loss"), optimizer, list(metrics)),
        }
        try:
            return st.originals["compile"](self, *args, **kwargs)
        except BaseException as exc:
            record["error"] = error_text(exc)
            raise
        finally:
            st.compile_calls.append(record)

    return compile


def _fit_hook(st: State, signature: inspect.Signature) -> Hook:
    def fit(self: Any, *args: Any, **kwargs: Any) -> Any:
        call, unknown = _bind(signature, (self, *args), kwargs)
        # What it was given is recorded before training starts: the pixel comparisons are cached with the
        # namespace's arrays, so a fit on `x_train` costs nothing extra.
        record: dict[str, Any] = {
            "arguments": guarded(lambda: plain_arguments(call), {}),
            "x": guarded(lambda: origin(call.get("x")), {}),
            "y": guarded(lambda: origin(call.get("y"), beside=call.get("x")), {}),
            "iterations_before": optimizer_steps(self),
            "unknown_arguments": unknown,
            "error": None,
            **guarded(lambda: training_start(self), {}),
        }
        before = record.get("weights_before") or weights_digest(self)
        history = None
        kwargs = guarded(lambda: watched(record, args, kwargs), kwargs)
        st.fit_depth += 1
        try:
            history = st.originals["fit"](self, *args, **kwargs)
            st.fit_results.append(history)
            return history
        except BaseException as exc:
            record["error"] = error_text(exc)
            raise
        finally:
            st.fit_depth -= 1
            _fit_done(st, self, record, history, before)

    return fit


def _fit_done(st: State, model: Any, record: dict[str, Any], history: Any, before: str) -> None:
    """Completes a fit's record with what the fit did, and keeps the model it trained."""
    done = history if history is not None else getattr(model, "history", None)
    record["completed_epochs"] = len(getattr(done, "epoch", []) or [])
    record["history_keys"] = sorted(getattr(done, "history", {}) or {})
    record["iterations_after"] = optimizer_steps(model)
    record["weights_after"] = weights_digest(model)
    record["weights_changed"] = bool(before) and record["weights_after"] != before
    guarded(lambda: note_weights(model), None)
    st.fit_calls.append(record)
    st.fit_models[id(record)] = model
    if record["completed_epochs"] > 0 or record["weights_changed"]:
        st.trained_model, st.trained_fit = model, record
        if history is not None:
            st.trained_histories[id(model)] = history


def _evaluate_hook(st: State, signature: inspect.Signature) -> Hook:
    def evaluate(self: Any, *args: Any, **kwargs: Any) -> Any:
        if st.fit_depth:
            return st.originals["evaluate"](self, *args, **kwargs)
        call, _ = _bind(signature, (self, *args), kwargs)
        x, y = call.get("x"), call.get("y")
        record: dict[str, Any] = {
            "x": guarded(lambda: origin(x), {}),
            "y": guarded(lambda: origin(y, beside=x), {}),
            "result": None,
            "error": None,
            "weights": weights_digest(self),  # which model, trained how far, this result belongs to
        }
        try:
            result = st.originals["evaluate"](self, *args, **kwargs)
            record["result"] = floats(result)
            _note_test_evaluate(st, self, record, x, y)
            return result
        except BaseException as exc:
            record["error"] = error_text(exc)
            raise
        finally:
            st.evaluate_calls.append(record)

    return evaluate


def _note_test_evaluate(st: State, model: Any, record: dict[str, Any], x: Any, y: Any) -> None:
    """On the test images: that trained model's score is the notebook's test score, and these are its test
    arrays. The provisioned test images, in order, win over anything else with as many samples (the test set
    shuffled, or a slice of the training set evaluated afterwards)."""
    by_content = guarded(lambda: str(record["x"].get("images", "")).startswith("test_"), False)
    by_count = guarded(lambda: record["x"].get("n_samples") == len(st.y_test), False)
    trained = any(fitted is model for fitted in st.fit_models.values())
    if y is not None and trained and (by_content or (by_count and not st.evaluated_by_content)):
        st.evaluated_test, st.evaluated_model = (x, y), model
        st.evaluated_by_content = st.evaluated_by_content or by_content


def _summary_hook(st: State, signature: inspect.Signature) -> Hook:
    def summary(self: Any, *args: Any, **kwargs: Any) -> Any:
        st.summary_calls += 1
        return st.originals["summary"](self, *args, **kwargs)

    return summary


def plain_arguments(call: dict[str, Any]) -> dict[str, Any]:
    """The arguments a call was given explicitly whose values are plain data; the data itself (x, y) aside."""
    given = {name: scalar(value) for name, value in call.items() if name not in ("self", "x", "y")}
    return {name: value for name, value in given.items() if value is not NOT_PLAIN}


_MAX_MODEL_CALLS = 200  # calls kept, over all models


def hook_model_calls() -> None:
    """Records the notebook's own calls of a model on data (`model(x)`, `model.predict(x)`), on keras.Model so
    that a layer's call costs nothing; Keras's calls inside fit, or inside another recorded call (the trained
    model inside the model that wraps it), are not the notebook's."""
    st = current()
    for method, kind in (("__call__", "call"), ("predict", "predict")):
        original = getattr(st.model_cls, method)
        st.originals[f"model.{method}"] = original

        def hook(self: Any, *args: Any, _original: Any = original, _kind: str = kind, **kwargs: Any) -> Any:
            if st.call_depth or st.fit_depth:
                return _original(self, *args, **kwargs)
            x = args[0] if args else kwargs.get("x", kwargs.get("inputs"))
            record = guarded(lambda: _model_call(_kind, x), None)
            st.call_depth += 1
            try:
                return _original(self, *args, **kwargs)
            finally:
                st.call_depth -= 1
                if record is not None:
                    st.model_calls = [*st.model_calls, (self, record)][-_MAX_MODEL_CALLS:]

        hook.__name__, hook.__doc__ = method, original.__doc__
        st.hooks[f"model.{method}"] = hook
        setattr(st.model_cls, method, hook)


def _model_call(kind: str, x: Any) -> dict[str, Any] | None:
    """`grader.facts.ModelCall` of a call on concrete data; None for a symbolic tensor (a model being built)."""
    if shape_of(x) is None:
        return None
    arr = as_array(x)
    if arr is None or arr.ndim == 0 or arr.dtype.kind not in "biuf":
        return None
    return {"method": kind, "n_samples": int(arr.shape[0]), "test_images": test_images_in(arr)}
