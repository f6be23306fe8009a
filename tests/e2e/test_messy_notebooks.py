"""Notebooks messier than the template (tests/notebooks/) still get a grade with clear messages."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import ROOT, fast_rubric, run_grade

pytestmark = pytest.mark.integration

FULL = {"prepare": 10, "visualize": 10, "build": 50, "train": 20, "evaluate": 10}
EXPECTED: dict[str, dict[str, float]] = {
    # All code merged into one cell: nothing depends on the template's cell layout.
    "merged_single_cell": {},
    # fit(nb_epoch=...) raises: no training, so no history, and the untrained model misses the accuracy.
    "old_nb_epoch": {"train": 10, "evaluate": 7},
    # The download fails without network: no data, so nothing that needs it can earn points.
    "download_elsewhere": {"prepare": 0, "visualize": 0, "train": 10, "evaluate": 0},
    # Accuracy computed by hand, no `score`: only the measured accuracy earns its points.
    "never_evaluates": {"evaluate": 3},
    # Issue 9: graded by what the notebook did. A naming slip costs the rubric's small `names` check once.
    "renamed_arrays": {"prepare": 9},  # X_train, X_test
    "renamed_valid": {"prepare": 9},  # X_train, X_valid, y_valid
    "unpacked_evaluate": {"evaluate": 9},  # test_loss, test_acc = model.evaluate(...)
    "randint_titles": {"visualize": 8},  # random.randint in the loop, no `indices`; titles "label: 7"
    "model_in_function": {"build": 49},  # clf = build_model()
    "flattened_input": {"prepare": 9, "build": 35},  # (N, 784) arrays, Input(784), no Flatten
    "all_deviations": {"prepare": 8, "visualize": 8, "build": 34, "evaluate": 9},
}
# Issue 9's notebooks: exactly the checks that lose points, each losing all of its points.
LOST: dict[str, set[str]] = {
    "renamed_arrays": {"prepare.names"},
    "renamed_valid": {"prepare.names"},
    "unpacked_evaluate": {"evaluate.names"},
    "randint_titles": {"visualize.indices"},
    "model_in_function": {"build.names"},
    "flattened_input": {"prepare.x_shape", "build.input_shape", "build.flatten", "build.model_input"},
    "all_deviations": {
        "prepare.names",
        "prepare.x_shape",
        "visualize.indices",
        "build.input_shape",
        "build.names",
        "build.flatten",
        "build.model_input",
        "evaluate.names",
    },
}


@pytest.fixture(scope="module")
def graded(tmp_path_factory: pytest.TempPathFactory, small_dataset: Path, cache_dir: Path) -> dict[str, Any]:
    tmp = tmp_path_factory.mktemp("messy")
    result = run_grade(
        "tests/notebooks",
        "--out", tmp / "out",
        "--dataset", small_dataset,
        "--rubric", fast_rubric(tmp),
        "--reference", ROOT / "reference" / "solution.ipynb",
        "--jobs", "2",
        cache=cache_dir,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    grades = json.loads((tmp / "out" / "grades.json").read_text())
    return {s["student"]: s for s in grades["students"]}


@pytest.mark.parametrize("student", sorted(EXPECTED))
def test_messy_notebook_grade(graded: dict[str, Any], student: str) -> None:
    record = graded[student]
    points = {section: record["sections"][section]["points"] for section in FULL}
    assert record["status"] == "graded"
    assert points == {**FULL, **EXPECTED[student]}, json.dumps(record["sections"], indent=1)[:4000]


@pytest.mark.parametrize("student", sorted(LOST))
def test_only_the_deviation_s_own_checks_lose_points(graded: dict[str, Any], student: str) -> None:
    checks = [(f"{sid}.{c['id']}", c) for sid, s in graded[student]["sections"].items() for c in s["checks"]]
    assert {key for key, c in checks if c["points"] < c["max"]} == LOST[student]
    assert all(c["points"] == 0 for key, c in checks if key in LOST[student])
    assert not graded[student]["integrity"]


def messages(record: dict[str, Any]) -> str:
    return " ".join(c["message"] for s in record["sections"].values() for c in s["checks"])


def test_messages_name_the_cause(graded: dict[str, Any]) -> None:
    assert "`nb_epoch` (use `epochs`)" in messages(graded["old_nb_epoch"])
    assert "URLError" in messages(graded["download_elsewhere"])
    assert "No `score` variable" in messages(graded["never_evaluates"])
    assert "`X_valid` holds the test images; the assignment calls it `x_test`" in messages(graded["renamed_valid"])
    assert "`clf` holds the model; the assignment calls it `model`" in messages(graded["model_in_function"])
    assert "the figure's images were picked without it" in messages(graded["randint_titles"])
    assert "is that part of the notebook missing" not in messages(graded["randint_titles"])
