"""The second homework (examples/mnist-cnn, the Keras convnet) graded by the same grader from its rubric alone.

Each bundled notebook carries one mistake that must cost points in its own section only; the reference and
the notebook written with other spellings score 100. Graded on a small subsample, so that CI stays fast.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from grader.dataset import subsample
from grader.rubric.load import load_rubric
from tests.conftest import ROOT, grade_example, section_points

pytestmark = pytest.mark.integration

HOMEWORK = ROOT / "examples" / "mnist-cnn"
FULL = {"prepare": 20, "build": 40, "train": 25, "evaluate": 15}
# student -> the sections that differ from full marks: the mistake's own section only.
EXPECTED: dict[str, dict[str, float]] = {
    "amy_tf_keras_spellings": {},  # tf.keras, model.add, kernel_size=3, MaxPool2D, Adam(0.001), positional fit
    "bo_no_printed_shapes": {"prepare": 17},  # the printed shape
    "cy_divided_by_256": {"prepare": 15},  # not the original pixels / 255
    "dan_kernel_5x5": {"build": 40 - 20 / 7 - 4},  # one of 7 layers differs; 35,338 parameters
    "eve_no_dropout": {"build": 40 - 20 / 7},  # one of 7 layers missing; the others still paired
    "finn_batch_size_64": {"train": 17},  # the batch_size variable and the fit argument
    "gia_validation_split_0_2": {"train": 20},  # the fit argument
    "hugo_evaluate_on_train": {"evaluate": 5},  # no evaluate on the test data: only the grader's accuracy earns
}


def test_the_rubric_describes_the_convnet() -> None:
    rubric = load_rubric(HOMEWORK / "rubric.yaml")
    assert [(s.id, s.points) for s in rubric.sections] == list(FULL.items())
    assert rubric.reference == (HOMEWORK / "reference" / "solution.ipynb").resolve()
    assert [layer.class_name for layer in rubric.assignment.model.layers] == [
        "Conv2D", "MaxPooling2D", "Conv2D", "MaxPooling2D", "Flatten", "Dropout", "Dense",
    ]  # fmt: skip


@pytest.fixture(scope="module")
def graded(tmp_path_factory: pytest.TempPathFactory, small_dataset: Path, cache_dir: Path) -> dict[str, Any]:
    tmp = tmp_path_factory.mktemp("cnn")
    data = subsample(small_dataset, tmp / "cnn-small.npz", 3_000, 1_000)
    # 15 epochs on 3,000 images: identical notebooks differ by up to 0.012
    return grade_example(HOMEWORK, tmp, data, cache_dir, accuracy_margin=0.05)


@pytest.mark.parametrize("student", sorted(p.stem for p in (HOMEWORK / "submissions").glob("*.ipynb")))
def test_each_mistake_costs_its_own_section(graded: dict[str, Any], student: str) -> None:
    section_points(graded[student], FULL, EXPECTED[student])
