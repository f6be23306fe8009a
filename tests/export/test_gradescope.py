"""Gradescope results: a test per check, adding up to the score."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from grader.export.file_stems import file_stems
from grader.export.gradescope import write_gradescope
from grader.output_layout import OutputLayout
from tests.export.grades import four_section_grades, grades
from tests.factories import four_section_rubric, rubric


def test_gradescope_results_have_a_test_per_check_adding_up_to_the_score(tmp_path: Path) -> None:
    write_gradescope(grades(), OutputLayout(tmp_path), rubric())
    stems = file_stems(g.student for g in grades())
    assert sorted(p.name for p in OutputLayout(tmp_path).gradescope_dir.iterdir()) == sorted(stems.values())
    for grade in grades():
        results = json.loads(OutputLayout(tmp_path).gradescope_results(stems[grade.student]).read_text("utf-8"))
        assert set(results) == {"score", "execution_time", "output", "tests"}
        assert results["score"] == grade.total
        assert grade.student in results["output"] and "Visualize the data" in results["output"]
        assert len(results["tests"]) == sum(len(s.checks) for s in grade.sections) == 31
        for test in results["tests"]:
            assert set(test) == {"name", "score", "max_score", "status", "output", "visibility"}
            assert test["visibility"] == "visible" and test["status"] in ("passed", "failed")
        assert sum(t["score"] for t in results["tests"]) == pytest.approx(results["score"])
        assert sum(t["max_score"] for t in results["tests"]) == 100
    hal_tests = json.loads(OutputLayout(tmp_path).gradescope_results("hal").read_text("utf-8"))["tests"]
    grid = next(t for t in hal_tests if t["name"] == "Visualize the data: A figure of 9 images in a 3x3 grid is shown")
    assert grid["score"] == 0 and grid["status"] == "failed" and "AttributeError" in grid["output"]


def test_gradescope_has_a_test_per_check_of_the_rubric(tmp_path: Path) -> None:
    rubric = four_section_rubric()
    write_gradescope(four_section_grades(), OutputLayout(tmp_path), rubric)
    results = json.loads(OutputLayout(tmp_path).gradescope_results("eve").read_text("utf-8"))
    expected = [(f"{s.title}: {c.title}", c.points) for s in rubric.sections for c in s.checks]
    assert [(t["name"], t["max_score"]) for t in results["tests"]] == expected and len(expected) == 27
    assert not any(t["name"].startswith("Visualize") for t in results["tests"])
    summary = next(t for t in results["tests"] if t["name"].endswith("model.summary() was called"))
    assert (summary["score"], summary["status"], results["score"]) == (0, "failed", 85)
    assert "Visualize" not in results["output"] and "eve: 85 / 90" in results["output"]
