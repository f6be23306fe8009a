"""The bundled submissions graded end to end through the real CLI, in real sandboxed kernels.

Each bundled notebook carries one typical mistake; its points are pinned per section, so a change in
execution, facts or checks that moves any grade shows up here.
"""

from __future__ import annotations

import csv
import json
import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.conftest import ROOT, fast_rubric, run_grade

pytestmark = pytest.mark.integration

REFERENCE = ROOT / "reference" / "solution.ipynb"
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
    # The options a later --rescore must repeat to find these facts in the cache.
    options = ("--dataset", small_dataset, "--rubric", fast_rubric(tmp), "--reference", REFERENCE, "--jobs", "2")
    result = run_grade("submissions", "--out", out, *options, cache=cache_dir)
    assert result.returncode == 0, result.stderr[-3000:]
    grades = json.loads((out / "grades.json").read_text())
    return {
        "options": options,
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
    assert any("stopped after 30 s" in hit for hit in graded["students"]["max_long_training"]["limits_hit"])


def test_near_copies_of_ben_are_flagged_and_nobody_else(graded: dict[str, Any]) -> None:
    copies = ["ben_tf_keras_spellings", "nia_copy_renamed_variables", "oli_copy_reordered_cells"]
    copies.append("pat_copy_comments_changed")
    for name, record in graded["students"].items():
        others = {entry["student"]: entry["score"] for entry in record["similar"]}
        if name in copies:
            assert set(others) == set(copies) - {name}, (name, others)
            assert all(score >= 0.7 for score in others.values())
        else:
            assert others == {}, (name, others)
    out: Path = graded["out"]
    index = (out / "index.html").read_text("utf-8")
    section = index[index.index('id="near-copies"') : index.index('id="students"')]
    pages = re.findall(r'href="(near-copies/[^"]+\.html)"', section)
    assert len(pages) == 6 and sorted(p.name for p in (out / "near-copies").iterdir()) == sorted(
        Path(p).name for p in pages
    )
    scores = [int(s) for s in re.findall(r'<td class="num">(\d+)%</td>', section)]
    assert scores == sorted(scores, reverse=True)
    page = (out / pages[0]).read_text("utf-8")
    assert "<mark>" in page and "reshape(-1, 28, 28, 1)" in page and "<script" not in page
    assert "6 near-copy pair(s) to review" in graded["stdout"]


def test_adjustments_apply_on_rescore_from_cached_facts(
    graded: dict[str, Any], tmp_path: Path, cache_dir: Path
) -> None:
    adjustments = tmp_path / "adjustments.csv"
    adjustments.write_text(
        "student,check,points,comment\n"
        "gus_missing_visualize,visualize.grid,2,Figure handed in separately as a PNG\n"
        "leo_typed_score,bonus,-5,Typed-in score: see the integrity policy\n"
        "ada_perfect,bonus,3,Helped the class on the forum\n",
        encoding="utf-8",
    )
    out = tmp_path / "adjusted"
    result = run_grade(
        "submissions",
        "--rescore",
        "--adjustments",
        adjustments,
        "--out",
        out,
        "--verbose",
        *graded["options"],
        cache=cache_dir,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    # The same rubric reads nothing new: every student came from the cache, and no kernel started.
    assert result.stderr.count("[cached]") == len(EXPECTED), result.stderr
    students = {s["student"]: s for s in json.loads((out / "grades.json").read_text())["students"]}
    grid = next(c for c in students["gus_missing_visualize"]["sections"]["visualize"]["checks"] if c["id"] == "grid")
    assert grid["points"] == 2 and grid["adjusted"] == {"from": 0.0, "comment": "Figure handed in separately as a PNG"}
    # Relative to the run without adjustments (its pinned points are checked above).
    expected = {name: record["total"] for name, record in graded["students"].items()}
    expected["gus_missing_visualize"] += 2
    expected["leo_typed_score"] -= 5
    expected["ada_perfect"] = min(100, expected["ada_perfect"] + 3)  # a total stays within 0..100
    assert {name: s["total"] for name, s in students.items()} == expected
    assert students["leo_typed_score"]["bonus"] == [
        {"points": -5.0, "comment": "Typed-in score: see the integrity policy"}
    ]
    rows = {row["student"]: row for row in csv.DictReader((out / "grades.csv").read_text().splitlines())}
    assert (
        rows["leo_typed_score"]["bonus"] == "-5"
        and float(rows["leo_typed_score"]["total"]) == expected["leo_typed_score"]
    )
    canvas = {row[0]: row[-1] for row in csv.reader((out / "canvas.csv").read_text().splitlines())}
    assert float(canvas["gus_missing_visualize"]) == expected["gus_missing_visualize"]
    index = (out / "index.html").read_text("utf-8")
    assert '<div class="label">Adjusted by hand</div><div class="value">3</div>' in index
    report = (out / "students" / "gus_missing_visualize.html").read_text("utf-8")
    assert "from 0 to 2 points: Figure handed in separately as a PNG" in report
    # The run without adjustments is untouched.
    before = json.loads((graded["out"] / "grades.json").read_text())["students"]
    assert {s["student"]: s["total"] for s in before} == {name: s["total"] for name, s in graded["students"].items()}


def test_outputs_are_written(graded: dict[str, Any]) -> None:
    out: Path = graded["out"]
    for name in ("grades.json", "grades.csv", "canvas.csv", "index.html"):
        assert (out / name).is_file(), name
    assert len(list((out / "students").glob("*.html"))) == len(EXPECTED)
    assert len(list((out / "gradescope").glob("*/results.json"))) == len(EXPECTED)
    assert f"Graded {len(EXPECTED)} notebook(s)" in graded["stdout"]


def _edited_fast_rubric(folder: Path, edit: Any) -> Path:
    """The tests' fast rubric, as `edit(data)` changes it, with its reference where the fast rubric has it."""
    folder.mkdir(parents=True, exist_ok=True)
    data = yaml.safe_load(fast_rubric(folder).read_text())
    edit(data)
    path = folder / "rubric.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def test_editing_an_expectation_regrades_the_class_from_the_cache(
    graded: dict[str, Any], tmp_path: Path, cache_dir: Path
) -> None:
    """Next term's homework trains 10 epochs: the rubric says so, and --rescore re-grades without a kernel."""

    def ten_epochs(data: dict[str, Any]) -> None:
        data["fit"]["epochs"] = 10
        data["sections"]["train"]["checks"]["settings"]["equals"]["epochs"] = 10

    rubric = _edited_fast_rubric(tmp_path / "rubric", ten_epochs)
    reference = tmp_path / "solution-10-epochs.ipynb"  # next term's reference, which trains 10 epochs
    reference.write_text(REFERENCE.read_text().replace("epochs = 20", "epochs = 10"))
    options = [*graded["options"]]
    options[options.index("--rubric") + 1] = rubric
    options[options.index("--reference") + 1] = reference
    out = tmp_path / "out"
    result = run_grade("submissions", "--rescore", "--out", out, "--verbose", *options, cache=cache_dir)
    assert result.returncode == 0, result.stderr[-3000:]
    # Every student from the cache: only the new reference ran.
    assert result.stderr.count("[cached]") == len(EXPECTED) and "running" not in result.stderr, result.stderr
    students = {s["student"]: s for s in json.loads((out / "grades.json").read_text())["students"]}
    train = students["ada_perfect"]["sections"]["train"]
    lost = {c["id"] for c in train["checks"] if not c["passed"]}
    assert lost == {"settings", "fit_call", "history"} and train["points"] == 20 - 2 - 4 - 3
    assert "epochs was 20, expected 10" in " ".join(c["message"] for c in train["checks"])


def test_a_rubric_reading_something_new_runs_those_notebooks_again(
    graded: dict[str, Any], tmp_path: Path, cache_dir: Path
) -> None:
    """A check of `num_classes`, which no cached run recorded: the grader says so and runs the notebook again."""

    def reads_num_classes(data: dict[str, Any]) -> None:
        checks = data["sections"]["prepare"]["checks"]
        checks["x_shape"]["points"] = 0
        checks["classes"] = {"kind": "data.variables", "equals": {"num_classes": 10}, "points": 1, "title": "n"}

    rubric = _edited_fast_rubric(tmp_path / "rubric", reads_num_classes)
    folder = tmp_path / "one"
    folder.mkdir()
    (folder / "ada_perfect.ipynb").write_bytes((ROOT / "submissions" / "ada_perfect.ipynb").read_bytes())
    options = [*graded["options"]]
    options[options.index("--rubric") + 1] = rubric
    out = tmp_path / "out"
    result = run_grade(folder, "--rescore", "--out", out, *options, cache=cache_dir)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "the rubric reads `num_classes`, which 1 cached run did not record" in result.stderr, result.stderr
    assert "even with --rescore" in result.stderr
    (ada,) = json.loads((out / "grades.json").read_text())["students"]
    classes = next(c for c in ada["sections"]["prepare"]["checks"] if c["id"] == "classes")
    assert classes["passed"] and ada["total"] == 100
