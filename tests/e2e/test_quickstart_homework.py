"""The third homework (examples/quickstart, TensorFlow's "quickstart for beginners") graded from its rubric alone,
with no custom check file: integer labels, a logits model with a loss that has settings, and a second model.

Each bundled notebook carries one typical mistake, pinned section by section; no honest notebook is flagged.
Graded on a small subsample, so that CI stays fast.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from grader.dataset import subsample
from grader.rubric.load import load_rubric
from tests.conftest import ROOT, grade_example, section_points

pytestmark = pytest.mark.integration

HOMEWORK = ROOT / "examples" / "quickstart"
FULL = {"prepare": 20, "build": 30, "train": 25, "evaluate": 15, "probabilities": 10}
# student -> the sections that differ from full marks.
EXPECTED: dict[str, dict[str, float]] = {
    "ana_keras3_spellings": {},  # keras 3, model.add, Adam(), the loss and metric objects, int64 labels, predict
    "ben_softmax_output": {"build": 26},  # Dense(10, softmax) under from_logits=True: one of 4 layers
    "cy_onehot_labels": {"prepare": 14, "train": 19},  # one-hot labels, and so CategoricalCrossentropy
    "dan_dropout_0_5": {"build": 26},  # one of 4 layers
    "eli_loss_without_from_logits": {"train": 19, "evaluate": 10},  # logits read as probabilities: 0.39 accuracy
    "fay_softmax_without_a_model": {"probabilities": 0},  # softmax of predict, no probability_model
    "gus_probabilities_of_training_images": {"probabilities": 7},  # probability_model(x_train[:5])
}


def test_the_rubric_needs_no_custom_checks() -> None:
    rubric = load_rubric(HOMEWORK / "rubric.yaml")
    assert rubric.custom_checks is None
    assert [(s.id, s.points) for s in rubric.sections] == list(FULL.items())
    loss = rubric.assignment.compile.loss
    assert loss is not None and loss.describe() == "SparseCategoricalCrossentropy(from_logits=True)"
    assert "probability_model" in rubric.probe_request().variables


@pytest.fixture(scope="module")
def graded(tmp_path_factory: pytest.TempPathFactory, small_dataset: Path, cache_dir: Path) -> dict[str, Any]:
    tmp = tmp_path_factory.mktemp("quickstart")
    data = subsample(small_dataset, tmp / "quickstart-small.npz", 3_000, 1_000)
    return grade_example(HOMEWORK, tmp, data, cache_dir)


@pytest.mark.parametrize("student", sorted(p.stem for p in (HOMEWORK / "submissions").glob("*.ipynb")))
def test_each_mistake_costs_its_sections(graded: dict[str, Any], student: str) -> None:
    section_points(graded[student], FULL, EXPECTED[student])


def _message(record: dict[str, Any], section: str, check: str) -> str:
    return next(c["message"] for c in record["sections"][section]["checks"] if c["id"] == check)


def test_the_messages_name_what_the_rubric_asks(graded: dict[str, Any]) -> None:
    """A loss refused for its settings names them; an output with an activation is told there should be none."""
    assert "from_logits False, expected True" in _message(graded["eli_loss_without_from_logits"], "train", "loss")
    layers = _message(graded["ben_softmax_output"], "build", "layers")
    assert "expected no activation" in layers and "linear" not in layers
    called = _message(graded["gus_probabilities_of_training_images"], "probabilities", "called")
    assert "none of them test images" in called
