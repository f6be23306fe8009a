"""User mistakes on the command line end in one clear line and a non-zero exit, never a traceback."""

from __future__ import annotations

from pathlib import Path

import pytest

from grader.pipeline import Options, run_limits
from grader.sandbox import Limits
from tests.conftest import ROOT, run_grade


def _assert_one_line_error(result, *words: str) -> None:  # noqa: ANN001
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("grade: error:"), result.stderr
    for word in words:
        assert word in lines[0]


def test_missing_folder(tmp_path: Path) -> None:
    _assert_one_line_error(run_grade(tmp_path / "nope", cache=tmp_path), "no such file")


def test_folder_without_notebooks(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    _assert_one_line_error(run_grade(tmp_path / "empty", cache=tmp_path), "no notebooks")


@pytest.mark.parametrize(
    ("edit", "words"),
    [
        (
            lambda t: t.replace("  prepare:\n    title", "  prepare:\n    colour: red\n    title"),
            ["colour", "unknown key"],
        ),
        (
            lambda t: t.replace("images_shape, points: 2", "images_shape, points: 3"),
            ["add up to 11", "sections.prepare"],
        ),
        (lambda t: t.replace("images_shape, points: 2", "images_shape, points: two"), ["expected a number", "x_shape"]),
        (lambda t: t.replace("points: 50", "points: 55"), ["add up to 50"]),
        (lambda t: t + "\n  - [unbalanced", ["not valid YAML"]),
        (
            lambda t: t.replace("similarity_threshold: 0.7", "similarity_threshold: 1.5"),
            ["similarity_threshold", "(line ", "at most 1"],
        ),
        (lambda t: t.replace("similarity_threshold: 0.7", "similarity_threshold: high"), ["expected a number"]),
    ],
)
def test_invalid_rubric_names_the_key(tmp_path: Path, edit, words: list[str]) -> None:  # noqa: ANN001
    rubric = tmp_path / "rubric.yaml"
    rubric.write_text(edit((ROOT / "rubric.yaml").read_text()))
    _assert_one_line_error(run_grade("submissions", "--rubric", rubric, cache=tmp_path), *words)


def test_unknown_check_kind_line_is_reported(tmp_path: Path) -> None:
    rubric = tmp_path / "rubric.yaml"
    rubric.write_text((ROOT / "rubric.yaml").read_text().replace("kind: data.printed", "kind: data.printd"))
    result = run_grade("submissions", "--rubric", rubric, cache=tmp_path)
    _assert_one_line_error(result, "data.printd", "line", "did you mean 'data.printed'")


def test_a_missing_template_is_named(tmp_path: Path) -> None:
    rubric = tmp_path / "rubric.yaml"
    rubric.write_text((ROOT / "rubric.yaml").read_text().replace("reference/template.ipynb", "handout.ipynb"))
    reference = ROOT / "reference" / "solution.ipynb"
    result = run_grade("submissions", "--rubric", rubric, "--reference", reference, cache=tmp_path)
    _assert_one_line_error(result, "template notebook not found", str(tmp_path / "handout.ipynb"))


def test_a_wrong_adjustments_line_stops_the_run_before_anything_is_written(tmp_path: Path) -> None:
    adjustments = tmp_path / "adjustments.csv"
    adjustments.write_text("student,check,points,comment\nada_perfect,build.hidden,12,Too generous\n")
    out = tmp_path / "out"
    result = run_grade("submissions", "--adjustments", adjustments, "--out", out, "--rescore", cache=tmp_path)
    _assert_one_line_error(result, str(adjustments), "line 2", "0..10")
    assert not out.exists()


def test_time_limits_from_the_command_line_replace_the_rubrics() -> None:
    rubric = Limits(cell_timeout_s=300, notebook_timeout_s=900)
    demo = run_limits(rubric, Options(Path("submissions"), cell_timeout=40))
    assert (demo.cell_timeout_s, demo.notebook_timeout_s) == (40, 900)
    short = run_limits(rubric, Options(Path("submissions"), timeout=30))
    assert (short.cell_timeout_s, short.notebook_timeout_s) == (30, 30)
    both = run_limits(rubric, Options(Path("submissions"), timeout=100, cell_timeout=40))
    assert (both.cell_timeout_s, both.notebook_timeout_s) == (40, 100)
    assert run_limits(rubric, Options(Path("submissions"))) == rubric


@pytest.mark.parametrize("flag", ["--cell-timeout", "--timeout"])
def test_time_limit_must_be_positive(tmp_path: Path, flag: str) -> None:
    _assert_one_line_error(run_grade("submissions", flag, "0", cache=tmp_path), flag, "positive")
