"""The model the notebook trained, its history, and the other Keras models under requested names."""

from __future__ import annotations

import functools
from typing import Any

from .keras_identity import identity, layer_facts, learning_rate, optimizer_name, optimizer_steps, shape_value
from .plain import MAX_LIST, guarded
from .state import current, names_of


def _other_model_facts(value: Any, trained: Any) -> dict[str, Any]:
    """`grader.facts.OtherModelFacts` of a Keras model under a requested name."""
    st = current()
    return {
        "class_name": type(value).__name__[:100],
        "layers": [layer for layer in layer_facts(value) if layer["class_name"] != "InputLayer"],  # a functional one's
        "is_trained": value is trained,
        "wraps_trained": trained is not None and value is not trained and _holds_layer(value, trained, 3),
        "calls": [record for model, record in st.model_calls if model is value][-20:],
    }


def _holds_layer(model: Any, target: Any, depth: int) -> bool:
    """Whether `target` is one of the model's layers, or of theirs up to `depth` levels down."""
    layers = getattr(model, "layers", None) or []
    return any(layer is target or (depth > 1 and _holds_layer(layer, target, depth - 1)) for layer in layers[:50])


def with_models(variables: dict[str, dict[str, Any]], ns: dict[str, Any], trained: Any) -> None:
    """Adds `model` facts to every requested variable that holds a Keras model."""
    st = current()
    for name, facts in variables.items():
        if isinstance(ns.get(name), st.model_cls):
            facts["model"] = guarded(functools.partial(_other_model_facts, ns[name], trained), None)


def trained_model(items: list[tuple[str, Any]]) -> tuple[Any, str]:
    """The model the notebook trained and how it was found: the one the last fit that trained was called on
    ("fit"); else the first Keras model under a requested name, or `model` ("name"); else the last Keras model
    in the namespace ("namespace"). (None, "") when there is none."""
    st = current()
    if st.evaluated_model is not None:  # trained, then evaluated on the test images: the notebook's result
        return st.evaluated_model, "fit"
    if st.trained_model is not None:
        return st.trained_model, "fit"
    ns = dict(items)
    for name in (*st.request["variables"], "model"):
        if isinstance(ns.get(name), st.model_cls):
            return ns[name], "name"
    models = [value for _, value in items if isinstance(value, st.model_cls)]
    return (models[-1], "namespace") if models else (None, "")


def model_facts(model: Any, found_by: str, items: list[tuple[str, Any]]) -> dict[str, Any]:
    st = current()
    if model is None:
        return {"present": False}
    facts: dict[str, Any] = {
        "present": True,
        "class_name": type(model).__name__,
        "names": names_of(model, items),
        "found_by": found_by,
        "is_sequential": isinstance(model, st.sequential_cls),
        "built": bool(model.built),
        "optimizer": optimizer_name(getattr(model, "optimizer", None)),
        "learning_rate": learning_rate(getattr(model, "optimizer", None)),
        "loss": identity(getattr(model, "loss", None), "loss"),
        "optimizer_iterations": optimizer_steps(model),
    }
    facts["input_shape"] = guarded(lambda: shape_value(tuple(model.input_shape)), None)
    facts["layers"] = layer_facts(model)
    facts["total_params"] = int(model.count_params()) if model.built else 0
    return facts


def history_facts(items: list[tuple[str, Any]], model: Any) -> dict[str, Any] | None:
    st = current()
    candidates = [v for _, v in items if _looks_like_history(v)]
    if model is not None and _looks_like_history(getattr(model, "history", None)):
        candidates.append(model.history)
    if not candidates:
        return None
    own = st.trained_histories.get(id(model)) if model is not None else None
    returned = [h for h in candidates if any(h is r for r in st.fit_results)]
    history = own if own is not None else (returned or candidates)[-1]
    returned = returned or ([own] if own is not None else [])
    values = {
        str(k): [float(x) for x in list(v)[:MAX_LIST]] for k, v in list(history.history.items())[:20] if _floats_ok(v)
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
        [float(x) for x in list(values)[:MAX_LIST]]
    except Exception:
        return False
    return True
