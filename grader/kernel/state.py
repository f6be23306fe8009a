"""What the probe has recorded in this kernel (one `State`, installed once), and the kernel's namespace."""

from __future__ import annotations

import functools
import json
import os
from typing import Any

import keras
import numpy as np

from .labels import class_count
from .plain import bounded_repr

MAX_NAMES = 20  # names reported for one object


MAX_NAME = 100  # characters of one name


class State:
    """Everything the probe knows; one instance per kernel."""

    def __init__(self, request: dict[str, Any], dataset_path: str, out_dir: str) -> None:
        self.request = request  # the grader's ProbeRequest: {"loader": ..., "variables": [...]}
        self.dataset_path = dataset_path
        self.out_dir = out_dir
        self.cell = 0
        self.summary_calls = 0
        self.compile_calls: list[dict[str, Any]] = []
        self.fit_calls: list[dict[str, Any]] = []
        self.evaluate_calls: list[dict[str, Any]] = []
        self.fit_results: list[Any] = []  # History objects returned by recorded fits
        self.fit_depth = 0  # fit runs evaluate for its validation data: those calls are not the student's
        # The model the last fit that trained was called on, that fit's record, and the x and y the last evaluate
        # on the test split was given: references, so that a model built and trained inside a function is found.
        self.trained_model: Any = None
        self.trained_fit: dict[str, Any] = {}
        self.evaluated_test: tuple[Any, Any] | None = None
        self.evaluated_model: Any = None  # the trained model whose evaluate got the test images
        self.evaluated_by_content = False  # ... recognised as the provisioned test images
        self.owners: dict[str, type] = {}  # the class each hooked method is defined on, which holds the hook
        # id(fit record) -> the model that fit was called on; a record without one (written by the notebook
        # itself) counts as the model's, as before this was kept
        self.fit_models: dict[int, Any] = {}
        self.trained_histories: dict[int, Any] = {}  # id(model) -> the History its last training fit returned
        self.model_calls: list[tuple[Any, dict[str, Any]]] = []  # (model, ModelCall) of the notebook's own calls
        self.call_depth = 0  # inside a recorded model call: Keras's calls of the model's layers are not the student's
        self.figures: dict[int, dict[str, Any]] = {}
        self.array_cache: dict[tuple[Any, ...], dict[str, Any] | None] = {}
        self.image_matches: dict[bytes, int | None] = {}  # a panel's pixels -> the training image they are
        self.row_index: dict[str, tuple[Any, Any]] = {}  # split -> its images' row keys, sorted, and their order
        self.row_positions: dict[tuple[Any, ...], Any] = {}  # an array and a split -> where its samples are in it
        # Training as it happened: id(variable) -> digests of the values its initialization or a recorded fit
        # gave it; a trainable variable that enters a fit with any other value was trained by something else.
        self.explained: dict[int, set[str]] = {}
        # Every value a recorded fit left any trainable variable at: weights copied from a model trained by a
        # recorded fit (a fine-tuned copy) are explained too.
        self.fit_values: set[str] = set()
        self.training_announced = False  # run_files.TRAINING_STARTED is written
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
        self.callback_cls = keras.callbacks.Callback
        self.sequential_cls = keras.Sequential
        self.repr = bounded_repr().repr

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

    @functools.cached_property
    def test_image_pixels(self) -> frozenset[bytes]:
        """The provisioned test images' raw pixels, to recognise one by value in any array."""
        return frozenset(image.tobytes() for image in self.x_test)

    @functools.cached_property
    def classes(self) -> int:
        """The number of distinct provisioned training labels: the width of a one-hot label."""
        return class_count(self.y_train)

    def split_of(self, samples: int) -> str:
        """ "train" or "test" when `samples` is that split's provisioned count, else ""."""
        if samples == len(self.y_train):
            return "train"
        return "test" if samples == len(self.y_test) else ""

    def split(self, name: str) -> tuple[Any, Any]:
        return (self.x_train, self.y_train) if name == "train" else (self.x_test, self.y_test)


_state: State | None = None


def begin(recording: State | None) -> None:
    """Makes `recording` the probe's state in this kernel (None: the probe is no longer installed)."""
    global _state
    _state = recording


def current() -> State:
    if _state is None:
        raise RuntimeError("probe not installed")
    return _state


def namespace() -> dict[str, Any]:
    from IPython import get_ipython

    shell = get_ipython()
    return shell.user_ns if shell is not None else {}


def public(ns: dict[str, Any]) -> list[tuple[str, Any]]:
    """The namespace's own names: not IPython's output cache (`_`, `_7`, `Out`'s entries) or private ones."""
    return [(name, value) for name, value in list(ns.items()) if not name.startswith("_")]


def names_of(value: Any, items: list[tuple[str, Any]]) -> list[str]:
    """Every namespace name bound to this very object."""
    return [name[:MAX_NAME] for name, bound in items if bound is value][:MAX_NAMES]
