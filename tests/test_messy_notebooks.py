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


def messages(record: dict[str, Any]) -> str:
    return " ".join(c["message"] for s in record["sections"].values() for c in s["checks"])


def test_messages_name_the_cause(graded: dict[str, Any]) -> None:
    assert "`nb_epoch` (use `epochs`)" in messages(graded["old_nb_epoch"])
    assert "URLError" in messages(graded["download_elsewhere"])
    assert "No `score` variable" in messages(graded["never_evaluates"])
