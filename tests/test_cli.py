"""User mistakes on the command line end in one clear line and a non-zero exit, never a traceback."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from grader import cli
from grader.cli import main
from grader.execution.settings import RunLimits
from grader.pipeline import Options, Outcome, run_limits
from grader.rubric.load import load_rubric
from grader.rubric_choice import BUNDLED_RUBRIC
from tests.conftest import ROOT, run_grade
from tests.factories import make_grade


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


# Every mistake a rubric can hold is tested in tests/rubric/; here, that `grade` shows one in one line.
@pytest.mark.parametrize(
    ("edit", "words"),
    [
        (
            lambda t: t.replace("  prepare:\n    title", "  prepare:\n    colour: red\n    title"),
            ["colour", "unknown key", "(line "],
        ),
        (lambda t: t + "\n  - [unbalanced", ["not valid YAML"]),
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


D2L_NOTEBOOK = b'{"cells": [], "metadata": {}, "nbformat": 4, "nbformat_minor": 5}'
D2L_EXPORT = "OrgDefinedId,Username,Last Name,First Name,Email,End-of-Line Indicator\n"


def d2l_download(folder: Path, *names: str) -> Path:
    folder.mkdir(parents=True)
    for name in names:
        (folder / name).write_bytes(D2L_NOTEBOOK)
    return folder


@pytest.mark.parametrize(
    ("stamp", "roster", "timezone", "words"),
    [
        ("Dec 32, 2026 1100 PM", D2L_EXPORT, None, ["Dec 32, 2026 1100 PM - mnist.ipynb", "D2L time stamp"]),
        ("Dec 1, 2026 1100 PM", "OrgDefinedId,Username,Last Name\n", None, ["line 1", "missing column(s)", "Email"]),
        (
            "Dec 1, 2026 1100 PM",
            D2L_EXPORT + "#1,kp,Park,Kim,kp@x,#\n#1,cd,Diaz,Cara,cd@x,#\n",
            None,
            ["line 3", "OrgDefinedId '#1' is already given on line 2"],
        ),
        ("Dec 1, 2026 1100 PM", D2L_EXPORT, "Mars/Olympus", ["--lms-timezone 'Mars/Olympus' is not a time zone"]),
    ],
)
def test_a_d2l_error_stops_the_run_before_anything_is_written(
    tmp_path: Path, stamp: str, roster: str, timezone: str | None, words: list[str]
) -> None:
    """Issue 21.4: one line naming the file, the line and the problem; exit 2; nothing written. No kernel runs."""
    download = d2l_download(tmp_path / "HW1", f"118817-463471 - Kim Park - {stamp} - mnist.ipynb")
    export = tmp_path / "d2l-export.csv"
    export.write_text(roster, encoding="utf-8")
    out = tmp_path / "out"
    zone = ["--lms-timezone", timezone] if timezone else []
    result = run_grade(download, "--roster", export, "--out", out, *zone, cache=tmp_path / "cache")
    _assert_one_line_error(result, *words)
    assert not out.exists()


def test_time_limits_from_the_command_line_replace_the_rubrics() -> None:
    rubric = RunLimits(cell_timeout_s=300, notebook_timeout_s=900)
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


# --- which rubric `grade` uses ----------------------------------------------------------------------------


def grade_in(folder: Path, monkeypatch: pytest.MonkeyPatch, *args: str | Path) -> int:
    """`grade` run in-process from `folder` on a missing submissions folder: it stops right after the rubric."""
    monkeypatch.chdir(folder)
    return main(["no-such-submissions", "--cache", str(folder / "cache"), *map(str, args)])


def test_outside_the_project_the_bundled_mnist_homework_is_used_and_named(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    assert grade_in(tmp_path, monkeypatch) == 2
    out, err = capsys.readouterr()
    assert out.splitlines() == [f"rubric: {BUNDLED_RUBRIC} (bundled MNIST homework)"]
    assert "no such file" in err  # the bundled rubric loaded; the missing folder is the only error


def test_the_bundled_homework_is_complete_and_is_the_projects_rubric() -> None:
    rubric = load_rubric(BUNDLED_RUBRIC)
    assert rubric.reference.is_file() and rubric.template is not None and rubric.template.is_file()
    assert BUNDLED_RUBRIC.is_relative_to(ROOT / "grader")  # package data: installed with the grader
    # One copy: the project's rubric.yaml and reference/ are the bundled files, so they cannot drift apart.
    assert (ROOT / "rubric.yaml").samefile(BUNDLED_RUBRIC)
    assert (ROOT / "reference" / "solution.ipynb").samefile(rubric.reference)
    assert (ROOT / "reference" / "template.ipynb").samefile(rubric.template)


def test_a_rubric_in_the_current_folder_is_used_and_named(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "rubric.yaml").write_text("sections: [not, a, mapping]\n")
    assert grade_in(tmp_path, monkeypatch) == 2
    out, err = capsys.readouterr()
    assert out.splitlines() == [f"rubric: {Path.cwd() / 'rubric.yaml'} (./rubric.yaml)"]
    assert "rubric.yaml" in err and "no such file" not in err  # it was loaded, and refused


def test_rubric_given_on_the_command_line_wins_and_quiet_says_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "rubric.yaml").write_text("not: the one to use\n")
    assert grade_in(tmp_path, monkeypatch, "--rubric", BUNDLED_RUBRIC) == 2
    assert capsys.readouterr().out.splitlines() == [f"rubric: {BUNDLED_RUBRIC} (--rubric)"]
    assert grade_in(tmp_path, monkeypatch, "--rubric", BUNDLED_RUBRIC, "--quiet") == 2
    assert capsys.readouterr().out == ""


def test_the_summary_line_gives_the_rubric_s_total(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """A rubric worth 102 points: the mean is out of 102, not 100."""
    grades = [dataclasses.replace(make_grade(student), total=total, max_total=102.0) for student, total in
              (("ada", 102.0), ("bo", 92.0))]  # fmt: skip
    outcome = Outcome(grades, calibration=None, out=tmp_path, near_copies=[])  # type: ignore[arg-type]
    monkeypatch.setattr(cli, "run", lambda options, cache: outcome)
    assert main([str(tmp_path), "--quiet", "--rubric", str(BUNDLED_RUBRIC)]) == 0
    assert "Graded 2 notebook(s): mean 97.0/102, " in capsys.readouterr().out
