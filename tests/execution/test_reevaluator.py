"""The re-evaluation's process is launched once the notebook trains, and not at all for one that never does (real
sandboxed kernels on a small dataset)."""

from __future__ import annotations

import threading
from pathlib import Path

import nbformat
import pytest

from grader.execution.reevaluator import Reevaluator
from grader.execution.run import grade_run
from grader.facts import Facts
from grader.sandbox.host import bwrap_path
from tests.conftest import real_run

pytestmark = pytest.mark.integration

BUILD = """import numpy as np
import keras
model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(2, activation="softmax")])
model.compile(loss="categorical_crossentropy", optimizer="sgd", metrics=["accuracy"])"""
FIT = "model.fit(np.zeros((8, 4)), np.eye(2)[[0, 1] * 4], epochs=1, verbose=0)"


def run_recording(
    cells: list[str], small_dataset: Path, folder: Path, monkeypatch: pytest.MonkeyPatch
) -> tuple[Facts, list[str]]:
    """The facts of a notebook of `cells`, and the order in which its cells started and the re-evaluation launched."""
    if bwrap_path() is None:
        pytest.skip("bubblewrap (bwrap) is not installed")
    events: list[str] = []
    launch = Reevaluator._launch

    def recorded(self: Reevaluator) -> object:
        events.append("launch")
        return launch(self)

    monkeypatch.setattr(Reevaluator, "_launch", recorded)
    notebook = folder / "notebook.ipynb"
    nbformat.write(nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(c) for c in cells]), notebook)
    dataset, settings = real_run(small_dataset, folder)
    facts = grade_run(notebook, dataset, settings, on_cell=lambda number, _: events.append(f"cell {number}"))
    return facts, events


def test_a_notebook_that_never_trains_starts_no_second_process(
    small_dataset: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    threads = set(threading.enumerate())
    facts, events = run_recording(["print('no model here')"], small_dataset, tmp_path, monkeypatch)
    # and leaves no thread behind (a kernel client's heartbeat thread once outlived every run)
    assert [t.name for t in set(threading.enumerate()) - threads] == []
    assert facts.execution.status == "completed"
    assert events == ["cell 1"]
    assert not facts.reevaluation.ok and "no Keras model" in facts.reevaluation.message


def test_the_re_evaluation_is_launched_after_the_cell_that_trains(
    small_dataset: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    facts, events = run_recording([BUILD, FIT, "print('after')"], small_dataset, tmp_path, monkeypatch)
    assert events == ["cell 1", "cell 2", "launch", "cell 3"]
    # The process loaded the saved model: its size and the one step of training are the model's.
    assert (facts.reevaluation.total_params, facts.reevaluation.optimizer_iterations) == (10, 1)


def test_a_model_saved_without_training_is_re_evaluated_all_the_same(
    small_dataset: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    facts, events = run_recording([BUILD], small_dataset, tmp_path, monkeypatch)
    assert events == ["cell 1", "launch"]  # launched once the kernel had saved the model
    assert (facts.reevaluation.total_params, facts.reevaluation.optimizer_iterations) == (10, 0)
