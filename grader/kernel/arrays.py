"""The data arrays of a notebook found by their values: which provisioned images and labels each holds."""

from __future__ import annotations

import functools
import math
from collections.abc import Callable
from typing import Any

import numpy as np

from .plain import array_sample, as_array, guarded, shape_of
from .rows import labels_beside, rows_compared
from .state import current, names_of, namespace, public

_MAX_ARRAYS = 32  # namespace arrays reported


def origin(value: Any, beside: Any = None) -> dict[str, Any]:
    """What a call was given as x or y (`grader.facts.DataOrigin`): the names bound to it, how many samples of
    what shape, and which provisioned images or labels it holds; labels (`beside` images) are also compared
    with the provisioned labels at those images' positions."""
    if value is None:
        return {}
    origin: dict[str, Any] = {"names": names_of(value, public(namespace()))}
    shape = shape_of(value)
    if shape:
        origin["n_samples"] = shape[0]
        origin["sample_shape"] = list(shape[1:])
        facts = array_facts(value) or {}
        if facts and beside is not None and not facts.get("labels_match"):  # all of a split's labels, in order
            facts = {**facts, **guarded(lambda: labels_beside(value, beside), {})}
        origin["images"], origin["labels"] = images_held(facts), labels_held(facts)
        if facts:
            origin["array"] = facts
    return origin


# The same readings as grader.facts.ArrayFacts.images and .labels, which this package cannot import; a test
# holds the two to the same answers.
def images_held(facts: dict[str, Any]) -> str:
    """Which provisioned images an array holds, all of them in order: "train_scaled", "test_raw", ... or ""."""
    split = facts.get("split", "")
    if split and (facts.get("matches_scaled") or facts.get("matches_raw")):
        return f"{split}_{'scaled' if facts.get('matches_scaled') else 'raw'}"
    return ""


def labels_held(facts: dict[str, Any]) -> str:
    """Which provisioned labels an array holds: "train_onehot", "test_sparse", "train_other" ... or ""."""
    split, shape = facts.get("split", ""), facts.get("shape")
    if not split or not facts.get("labels_match") or shape is None:
        return ""
    form = "sparse" if len(shape) == 1 else "onehot" if facts.get("onehot") else "other"
    return f"{split}_{form}"


def array_facts(value: Any) -> dict[str, Any] | None:
    """`grader.facts.ArrayFacts` for an array of numbers with at least one axis; None for anything else.

    The comparisons with the provisioned data are cached per array (its identity, buffer, shape, dtype and a
    sample of its values), so an array that does not change costs nothing in later cells."""
    arr = as_array(value)
    if arr is None or arr.ndim == 0 or arr.dtype.kind not in "biuf":
        return None
    st = current()
    key = (id(value), arr.__array_interface__["data"][0], arr.shape, arr.dtype.str, array_sample(arr))
    if key in st.array_cache:
        return st.array_cache[key]
    facts: dict[str, Any] = {
        "present": True,
        "type_name": type(value).__name__[:100],
        "shape": [int(n) for n in arr.shape],
        "dtype": str(arr.dtype),
    }
    if arr.size:
        facts["min"] = float(np.nanmin(arr))
        facts["max"] = float(np.nanmax(arr))
    split = st.split_of(arr.shape[0])
    if split:
        facts["split"] = split
        facts.update(_compared(arr, split))
    if not (facts.get("matches_scaled") or facts.get("matches_raw")):
        facts.update(guarded(lambda: rows_compared(arr), {}))
    st.array_cache[key] = facts
    return facts


def _compared(arr: Any, split: str) -> dict[str, Any]:
    """How an array with `split`'s sample count relates to that split's provisioned images and labels, element
    by element whatever its shape."""
    st = current()
    raw, labels = st.split(split)
    found: dict[str, Any] = {}
    if arr.size == raw.size:
        found["matches_scaled"], found["matches_raw"] = pixels_match(arr.reshape(raw.shape), raw, st.np_array_equal)
    if arr.shape == labels.shape:
        found["onehot"] = False
        found["labels_match"] = bool(st.np_array_equal(arr, labels))
    elif arr.shape == (len(labels), st.classes):
        found["onehot"] = bool(np.isin(arr, (0, 1)).all() and (arr.sum(axis=1) == 1).all())
        found["labels_match"] = bool(st.np_array_equal(arr.argmax(axis=1), labels))
    return found


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


def namespace_arrays(items: list[tuple[str, Any]]) -> list[tuple[Any, dict[str, Any]]]:
    """Each namespace array (or tensor) with a provisioned split's sample count, once per object, with its facts."""
    st = current()
    found: list[tuple[Any, dict[str, Any]]] = []
    seen: set[int] = set()
    for _, value in items:
        shape = shape_of(value)
        if not shape or id(value) in seen or not st.split_of(shape[0]):
            continue
        seen.add(id(value))
        facts = guarded(functools.partial(array_facts, value), None)
        if facts is not None:
            found.append((value, facts))
            if len(found) == _MAX_ARRAYS:
                break
    return found


def test_arrays(arrays: list[tuple[Any, dict[str, Any]]]) -> tuple[Any, Any] | None:
    """The student's test images and labels for the re-evaluation to run model.evaluate on: what the last
    evaluate on the test split was given; else the namespace's arrays with the test split's sample count,
    images (as many values as the provisioned test images) and labels ((n,) or (n, classes)), preferring those
    prepared as the training fit's x and y were (the same sample shape, scaling and label form), then those
    holding the provisioned data. None when the notebook has neither."""
    st = current()
    if st.evaluated_test is not None:
        return st.evaluated_test
    x, y = st.trained_fit.get("x", {}), st.trained_fit.get("y", {})
    test = [(value, facts) for value, facts in arrays if facts.get("split") == "test"]
    images = [(v, f) for v, f in test if math.prod(f["shape"]) == st.x_test.size]
    labels = [(v, f) for v, f in test if f.get("labels_match") is not None]
    if not images or not labels:
        return None

    def unlike_x(facts: dict[str, Any]) -> tuple[bool, bool, bool]:
        held = images_held(facts)
        return facts["shape"][1:] != x.get("sample_shape"), held.replace("test", "train") != x.get("images"), not held

    def unlike_y(facts: dict[str, Any]) -> tuple[bool, bool]:
        held = labels_held(facts)
        return held.replace("test", "train") != y.get("labels"), not held

    return min(images, key=lambda c: unlike_x(c[1]))[0], min(labels, key=lambda c: unlike_y(c[1]))[0]
