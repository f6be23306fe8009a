"""Student objects turned into bounded plain data (JSON scalars and short lists), each read under a guard."""

from __future__ import annotations

import reprlib
from collections.abc import Callable
from typing import Any

import numpy as np

MAX_LIST = 1000  # elements of a recorded list value, or of a list converted to an array


MAX_TEXT = 200  # characters of a recorded string or repr


MAX_CONFIG = 40  # configuration entries of one layer


_INT64 = 1 << 63  # the grader refuses an integer of 64 bits or more: such a value is not recorded


# A value that is not plain data (distinct from None, which is).
NOT_PLAIN = object()


def bounded_repr() -> reprlib.Repr:
    bounded = reprlib.Repr()
    bounded.maxlevel = 2
    bounded.maxtuple = bounded.maxlist = bounded.maxarray = 12
    bounded.maxdict = bounded.maxset = bounded.maxfrozenset = bounded.maxdeque = 8
    bounded.maxstring = bounded.maxother = MAX_TEXT
    bounded.maxlong = 40
    return bounded


def guarded(compute: Callable[[], Any], default: Any) -> Any:
    """One fact; a student value that breaks its inspection yields the default, not a lost snapshot."""
    try:
        return compute()
    except BaseException:  # also what a student's property raises to stop the grader (SystemExit, ...)
        return default


def scalar(value: Any) -> Any:
    """`value` as a JSON scalar (numpy's scalars converted), or NOT_PLAIN."""
    if value is None or isinstance(value, bool):
        return value
    if isinstance(value, np.bool_):
        return bool(value)
    if isinstance(value, int | np.integer):
        number = int(value)
        return number if abs(number) < _INT64 else NOT_PLAIN
    if isinstance(value, float | np.floating):
        return float(value)
    if isinstance(value, str):
        return str(value) if len(value) <= MAX_TEXT else NOT_PLAIN
    if isinstance(value, np.ndarray) and value.ndim == 0:
        return scalar(value.item())
    return NOT_PLAIN


def plain(value: Any) -> Any:
    """`value` as plain JSON when it is a scalar, or a flat list, tuple or 1-D array of scalars (a tuple such as
    (28, 28, 1) becomes [28, 28, 1], a None in it null); NOT_PLAIN otherwise."""
    simple = scalar(value)
    if simple is not NOT_PLAIN:
        return simple
    if isinstance(value, np.ndarray) and value.ndim == 1 and value.size <= MAX_LIST:
        value = value.tolist()
    if not isinstance(value, list | tuple) or len(value) > MAX_LIST:
        return NOT_PLAIN
    items = [scalar(item) for item in value]
    return NOT_PLAIN if any(item is NOT_PLAIN for item in items) else items


def shape_of(value: Any) -> tuple[int, ...] | None:
    """The shape of an array or of anything that converts itself to one (a tensor, a data frame); None for
    anything else, lists included."""
    if isinstance(value, np.ndarray):
        return value.shape
    try:  # a student's object may raise anything from its attribute lookup
        if isinstance(value, type) or not hasattr(value, "__array__"):
            return None
        return tuple(int(n) for n in value.shape)
    except BaseException:
        return None


def as_array(value: Any) -> Any:
    """`value` as a numpy array when that is cheap: an array, anything that converts itself, a short list or
    tuple; None otherwise."""
    if isinstance(value, np.ndarray):
        return value
    if isinstance(value, list | tuple):
        if len(value) > MAX_LIST:
            return None
    elif shape_of(value) is None:
        return None
    try:
        return np.asarray(value)
    except Exception:
        return None


def array_sample(value: Any) -> float:
    try:
        return float(np.asarray(value.ravel()[:: max(1, value.size // 997)], dtype=float).sum())
    except Exception:
        return 0.0


def floats(value: Any) -> list[float] | None:
    """The numbers of a scalar, a short sequence or array, or a dict's values (evaluate's return_dict)."""
    if isinstance(value, dict):  # evaluate(return_dict=True): in evaluate's own order, the loss first
        value = [value[key] for key in sorted(value, key=lambda key: key != "loss")]
    if isinstance(value, str | bytes):
        return None
    try:
        arr = np.asarray(value, dtype=float).ravel()
    except Exception:
        return None
    if arr.size == 0 or arr.size > 100:
        return None
    return [float(v) for v in arr]
