"""The second homework (examples/mnist-cnn, the Keras convnet) graded by the same grader from its rubric alone.

Each bundled notebook carries one mistake that must cost points in its own section only; the reference and
the notebook written with other spellings score 100. Graded on a small subsample, so that CI stays fast.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from grader.dataset import subsample
from grader.rubric import load_rubric
from tests.conftest import ROOT, run_grade

pytestmark = pytest.mark.integration

HOMEWORK = ROOT / "examples" / "mnist-cnn"
FULL = {"prepare": 20, "build": 40, "train": 25, "evaluate": 15}
EXPECTED: dict[str, dict[str, float]] = {}


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
    rubric = yaml.safe_load((HOMEWORK / "rubric.yaml").read_text())
    rubric["accuracy_margin"] = 0.05  # 15 epochs on 3,000 images: identical notebooks differ by up to 0.012
    for key in ("reference", "template"):
        rubric[key] = str(HOMEWORK / rubric[key])
    path = tmp / "rubric.yaml"
    path.write_text(yaml.safe_dump(rubric, sort_keys=False))
    result = run_grade(HOMEWORK / "submissions", "--out", tmp / "out", "--dataset", data, "--rubric", path,
                       "--jobs", "2", cache=cache_dir)  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    grades = json.loads((tmp / "out" / "grades.json").read_text())
    return {s["student"]: s for s in grades["students"]}


@pytest.mark.parametrize("student", sorted(p.stem for p in (HOMEWORK / "submissions").glob("*.ipynb")))
def test_each_mistake_costs_its_own_section(graded: dict[str, Any], student: str) -> None:
    record = graded[student]
    points = {section: record["sections"][section]["points"] for section in FULL}
    assert record["status"] == "graded"
    assert points == {**FULL, **EXPECTED[student]}, json.dumps(record["sections"], indent=1)[:4000]
