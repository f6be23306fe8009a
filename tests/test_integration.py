"""The bundled submissions graded end to end through the real CLI, in real sandboxed kernels.

Each bundled notebook carries one typical mistake; its points are pinned per section, so a change in
execution, facts or checks that moves any grade shows up here.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import ROOT, fast_rubric, run_grade

pytestmark = pytest.mark.integration

FULL = {"prepare": 10, "visualize": 10, "build": 50, "train": 20, "evaluate": 10}
# student -> the sections that differ from full marks (the mistake's own section only, unless it truly
# breaks a later one: an optimizer that fails to construct means no training and no score).
EXPECTED: dict[str, dict[str, float]] = {
    "ada_perfect": {},
    "ben_tf_keras_spellings": {},
    "cara_unscaled_pixels": {"prepare": 7},
    "dev_sparse_labels": {"prepare": 7, "train": 15},
    "eli_relu": {"build": 40},
    "fay_adam_optimizer": {"train": 17},
    "gus_missing_visualize": {"visualize": 0},
    "hal_crashing_cell": {"visualize": 2},
    "ivy_unfinished_template": {"evaluate": 3},
    "jon_old_keras_lr": {"train": 2, "evaluate": 0},
    "kim_onehot_titles": {"visualize": 7},
    "leo_typed_score": {"evaluate": 0},
    "max_long_training": {"train": 11},
    # Near-copies of ben (renamed variables, reordered cells, reworded comments): ben's points, and flagged.
    "nia_copy_renamed_variables": {},
    "oli_copy_reordered_cells": {},
    "pat_copy_comments_changed": {},
}


@pytest.fixture(scope="module")
def graded(tmp_path_factory: pytest.TempPathFactory, small_dataset: Path, cache_dir: Path) -> dict[str, Any]:
    tmp = tmp_path_factory.mktemp("bundled")
    out = tmp / "reports"
    result = run_grade(
        "submissions",
        "--out",
        out,
        "--dataset",
        small_dataset,
        "--rubric",
        fast_rubric(tmp),
        "--reference",
        ROOT / "reference" / "solution.ipynb",
        "--jobs",
        "2",
        cache=cache_dir,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    grades = json.loads((out / "grades.json").read_text())
    return {
        "out": out,
        "stdout": result.stdout,
        "stderr": result.stderr,
        "students": {s["student"]: s for s in grades["students"]},
    }


def test_every_bundled_submission_is_graded(graded: dict[str, Any]) -> None:
    assert set(graded["students"]) == set(EXPECTED)
    assert all(s["status"] == "graded" for s in graded["students"].values())


@pytest.mark.parametrize("student", sorted(EXPECTED))
def test_bundled_mistake_loses_points_in_its_own_section(graded: dict[str, Any], student: str) -> None:
    record = graded["students"][student]
    points = {section: record["sections"][section]["points"] for section in FULL}
    assert points == {**FULL, **EXPECTED[student]}, json.dumps(record["sections"], indent=1)[:4000]
    assert record["total"] == sum(points.values())


def test_failed_checks_explain_themselves(graded: dict[str, Any]) -> None:
    checks = {
        (name, c["id"]): c
        for name, s in graded["students"].items()
        for section in s["sections"].values()
        for c in section["checks"]
    }
    assert "divide by 255" in checks["cara_unscaled_pixels", "x_scaled"]["message"]
    assert "to_categorical" in checks["dev_sparse_labels", "y_onehot"]["message"]
    assert "'relu'" in checks["eli_relu", "hidden"]["message"]
    assert "learning_rate=" in checks["jon_old_keras_lr", "optimizer"]["message"]
    assert "cell 3 raised AttributeError" in checks["hal_crashing_cell", "titles"]["message"]
    assert "SyntaxError" in checks["ivy_unfinished_template", "score"]["message"]
    assert "one-hot" in checks["kim_onehot_titles", "titles"]["message"]
    assert all(c["message"] for c in checks.values())


def test_spoofed_score_is_flagged_with_evidence(graded: dict[str, Any]) -> None:
    leo = graded["students"]["leo_typed_score"]
    assert any("[0.05, 0.99]" in flag for flag in leo["integrity"])
    honest = [s for name, s in graded["students"].items() if name != "leo_typed_score"]
    assert not any(s["integrity"] for s in honest)


def test_time_limit_is_reported(graded: dict[str, Any]) -> None:
    assert any("stopped after 20 s" in hit for hit in graded["students"]["max_long_training"]["limits_hit"])


def test_outputs_are_written(graded: dict[str, Any]) -> None:
    out: Path = graded["out"]
    for name in ("grades.json", "grades.csv", "canvas.csv", "index.html"):
        assert (out / name).is_file(), name
    assert len(list((out / "students").glob("*.html"))) == len(EXPECTED)
    assert len(list((out / "gradescope").glob("*/results.json"))) == len(EXPECTED)
    assert f"Graded {len(EXPECTED)} notebook(s)" in graded["stdout"]
