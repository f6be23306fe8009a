"""Samples of an array found among the provisioned images by their values, in any order and count."""

from __future__ import annotations

from typing import Any

import numpy as np

from .plain import array_sample, as_array
from .state import current

_ROW_BLOCK = 4096  # samples compared at once: bounds the temporary copies to a few tens of MB


def _row_keys(rows: Any) -> Any:
    """A 64-bit key for each row of whole pixel values (n, pixels): a random linear hash, wrapping."""
    weights = np.random.default_rng(7).integers(1, 1 << 63, rows.shape[1], dtype=np.uint64)
    return rows.astype(np.uint64) @ weights


def _row_index(split: str) -> tuple[Any, Any]:
    """The keys of `split`'s provisioned images, sorted, and the position of each in the split."""
    st = current()
    if split not in st.row_index:
        raw = st.split(split)[0]
        flat = raw.reshape(len(raw), -1)
        keys = np.concatenate(
            [_row_keys(flat[start : start + _ROW_BLOCK]) for start in range(0, len(flat), _ROW_BLOCK)]
            or [np.empty(0, np.uint64)]
        )
        order = np.argsort(keys, kind="stable")
        st.row_index[split] = (keys[order], order)
    return st.row_index[split]


def _whole_pixels(block: Any, scaled: bool) -> tuple[Any, Any]:
    """A block of samples as whole 0-255 pixel values, and which rows are exactly that (scaled: divided by 255)."""
    pixels = block * 255.0 if scaled else block
    rounded = np.rint(pixels)
    close = np.abs(pixels - rounded) <= (255e-5 if scaled else 0.0)
    exact = (close & (rounded >= 0) & (rounded <= 255)).all(axis=1)
    return np.where(exact[:, None], rounded, 0.0), exact


def sample_positions(arr: Any, split: str) -> tuple[Any, bool] | None:
    """Where each sample of an image array is among `split`'s provisioned images (-1: it is none of them), in any
    order, and whether the array holds them scaled to [0, 1]; None when its samples are not image-sized."""
    st = current()
    raw = st.split(split)[0]
    n = arr.shape[0] if arr.ndim else 0
    if not n or not len(raw) or arr.size != n * raw[0].size:
        return None
    key = (id(arr), arr.__array_interface__["data"][0], arr.shape, arr.dtype.str, array_sample(arr), split)
    if key not in st.row_positions:
        flat = arr.reshape(n, -1)
        scaled = arr.dtype.kind == "f" and float(np.nanmax(arr)) <= 1.0
        keys, order = _row_index(split)
        provisioned = raw.reshape(len(raw), -1)
        positions = np.full(n, -1, dtype=np.int64)
        for start in range(0, n, _ROW_BLOCK):
            pixels, exact = _whole_pixels(np.asarray(flat[start : start + _ROW_BLOCK], dtype=np.float64), scaled)
            wanted = _row_keys(pixels)
            at = np.minimum(np.searchsorted(keys, wanted), len(keys) - 1)
            found = order[at]
            same = exact & (keys[at] == wanted) & (provisioned[found] == pixels).all(axis=1)
            positions[start : start + len(pixels)] = np.where(same, found, -1)
        st.row_positions[key] = (positions, scaled)
    return st.row_positions[key]


def rows_compared(arr: Any) -> dict[str, Any]:
    """How many samples of an image array are provisioned training images, and how many test images that are no
    training image, whatever their order and count (`grader.facts.ArrayFacts.train_rows`); {} for other arrays."""
    train, test = sample_positions(arr, "train"), sample_positions(arr, "test")
    if train is None or test is None:
        return {}
    in_train = train[0] >= 0
    return {
        "train_rows": int(in_train.sum()),
        "test_rows": int(((test[0] >= 0) & ~in_train).sum()),
        "rows_scaled": train[1],
    }


def labels_beside(labels: Any, images: Any) -> dict[str, Any]:
    """`grader.facts.ArrayFacts.rows_labels` (and `onehot`) of labels passed beside images: the split whose
    provisioned labels they are at the positions those images hold in it."""
    st = current()
    arr, pictures = as_array(labels), as_array(images)
    if arr is None or pictures is None or arr.ndim not in (1, 2) or len(arr) != len(pictures):
        return {}
    found: dict[str, Any] = {}
    if arr.ndim == 2:
        if arr.shape[1] != st.classes:
            return {}
        found["onehot"] = bool(np.isin(arr, (0, 1)).all() and (arr.sum(axis=1) == 1).all())
        arr = arr.argmax(axis=1)
    for split in ("train", "test"):
        held = sample_positions(pictures, split)
        if held is not None and (held[0] >= 0).all() and st.np_array_equal(arr, st.split(split)[1][held[0]]):
            return {**found, "rows_labels": split}
    return found


def test_images_in(arr: Any) -> int:
    """How many samples of `arr` are provisioned test images, raw or divided by 255, whatever their shape;
    compared in blocks, so that a call on the whole test set takes no more temporary memory than one block."""
    st = current()
    size = st.x_test[0].size
    if arr.size != len(arr) * size:
        return 0
    found = {np.float32(1): 0, np.float32(255): 0}
    for start in range(0, len(arr), 4096):
        rows = np.asarray(arr[start : start + 4096], dtype=np.float32).reshape(-1, size)
        for scale in found:
            pixels = rows * scale
            rounded = np.rint(pixels)
            whole = (np.abs(pixels - rounded) <= 1e-3).all(axis=1) & ((rounded >= 0) & (rounded <= 255)).all(axis=1)
            exact = rounded[whole].astype(st.x_test.dtype)
            found[scale] += sum(1 for row in exact if row.tobytes() in st.test_image_pixels)
    return max(found.values())
