"""Fault injection: each stage of the pipeline fails for one student, and only that student is affected.

The whole `grade` command runs in-process (`grader.cli.main`) with hand-made facts in place of kernel
runs, so the test needs no sandbox and no kernel. One student per stage has that stage raise; two
students have nothing injected and must come out exactly as in a clean run.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from markupsafe import escape

import grader.executors
import grader.export.canvas
import grader.export.grades_csv
import grader.export.grades_json
import grader.export.gradescope
import grader.pipeline
import grader.report.render
from grader.cli import main
from grader.errors import GraderError
from grader.export.file_stems import file_stems
from grader.facts import Facts
from grader.facts_cache import FactsCache
from grader.isolation import (
    CANVAS_CSV,
    DECODE,
    EXECUTE,
    FEEDBACK,
    GRADES_CSV,
    GRADES_JSON,
    GRADESCOPE,
    NEAR_COPIES,
    REPORT,
    SCORE,
    StageGuard,
)
from tests.factories import ROOT, make_facts

HEALTHY = ("ada", "zoe")
# student -> the stage that fails for them
FAULTS = {
    "exe": EXECUTE,
    "dec": DECODE,
    "sco": SCORE,
    "rep": REPORT,
    "jso": GRADES_JSON,
    "csv": GRADES_CSV,
    "can": CANVAS_CSV,
    "gsc": GRADESCOPE,
    "fee": FEEDBACK,
}


class Injected(RuntimeError):
    """The fault this test puts into a stage."""


def failing_for(student: str, real: Callable[..., Any], who: Callable[..., str]) -> Callable[..., Any]:
    """`real`, except that it raises for `student` (found in its arguments by `who`)."""

    def stage(*args: Any, **kwargs: Any) -> Any:
        if who(*args, **kwargs) == student:
            raise Injected(f"injected into {student}'s stage")
        return real(*args, **kwargs)

    return stage


def inject_faults(monkeypatch: pytest.MonkeyPatch, folder: Path) -> None:
    perfect = make_facts()

    def fake_run(path: Path, *_: Any) -> Facts:  # the executor's call: hand-made facts, no kernel
        if path.stem == "exe":
            raise Injected("injected into the execution")
        return perfect

    monkeypatch.setattr(grader.executors, "grade_run", fake_run)

    # The cache key of "dec"'s notebook: reading that entry raises.
    real_key, keys = grader.executors.cache_key, {}

    def cache_key(notebook: bytes, *rest: Any) -> str:
        key = real_key(notebook, *rest)
        keys[key] = notebook
        return key

    monkeypatch.setattr(grader.executors, "cache_key", cache_key)
    dec = (folder / "dec.ipynb").read_bytes()
    monkeypatch.setattr(FactsCache, "get", failing_for(dec, FactsCache.get, lambda _, key: keys.get(key)))

    by_grade: Callable[..., str] = lambda grade, *_, **__: grade.student  # noqa: E731
    patches = [
        (grader.pipeline, "grade_with_notes", "sco", lambda sub, *_: sub.student),
        (grader.report.render, "_student_page", "rep", by_grade),
        (grader.export.grades_json, "grade_entry", "jso", by_grade),
        (grader.export.grades_csv, "_grades_csv_row", "csv", by_grade),
        (grader.export.canvas, "_canvas_row", "can", by_grade),
        (grader.export.gradescope, "gradescope_results", "gsc", by_grade),
        (grader.pipeline, "write_feedback_notebook", "fee", by_grade),
    ]
    for module, name, student, who in patches:
        monkeypatch.setattr(module, name, failing_for(student, getattr(module, name), who))


def class_folder(tmp_path: Path, students: list[str]) -> Path:
    """A folder of ada's perfect notebook under each name, each with distinct bytes (one cache entry each)."""
    folder = tmp_path / "subs"
    folder.mkdir()
    notebook = (ROOT / "submissions" / "ada_perfect.ipynb").read_text("utf-8")
    for i, student in enumerate(students):
        (folder / f"{student}.ipynb").write_text(notebook + " " * i, "utf-8")
    return folder


def grade_in_process(folder: Path, out: Path, dataset: Path, tmp_path: Path, *extra: str) -> int:
    return main(
        [str(folder), "--no-sandbox", "--dataset", str(dataset), "--out", str(out)]
        + ["--cache", str(tmp_path / "cache"), "--rubric", str(ROOT / "rubric.yaml"), *extra]
    )


def test_a_stage_failing_for_one_student_costs_that_student_only(
    small_dataset: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "out"
    folder = class_folder(tmp_path, [*HEALTHY, *FAULTS])
    inject_faults(monkeypatch, folder)

    code = grade_in_process(folder, out, small_dataset, tmp_path, "--feedback-notebooks")

    assert code == 0
    stderr = capsys.readouterr().err
    entries = {e["student"]: e for e in json.loads((out / "grades.json").read_text("utf-8"))["students"]}
    rows = {r["student"]: r for r in csv.DictReader((out / "grades.csv").read_text("utf-8").splitlines())}
    canvas = {r[0]: r for r in csv.reader((out / "canvas.csv").read_text("utf-8").splitlines()[2:])}
    stems = file_stems(entries)
    assert set(entries) == set(rows) == set(canvas) == {*HEALTHY, *FAULTS}
    for student in HEALTHY:
        assert (entries[student]["status"], entries[student]["total"], entries[student]["message"]) == (
            "graded",
            100.0,
            "",
        )
        assert (rows[student]["status"], rows[student]["total"], canvas[student][-1]) == ("graded", "100", "100")
        page = (out / "students" / f"{stems[student]}.html").read_text("utf-8")
        assert "Training curves" in page and "Report unavailable" not in page
        assert json.loads((out / "gradescope" / stems[student] / "results.json").read_text())["score"] == 100
        assert (out / "feedback" / f"{stems[student]}.ipynb").is_file()
    for student, stage in FAULTS.items():
        said = f"The grader failed while {stage}"
        assert entries[student]["status"] == "error" and said in entries[student]["message"], student
        assert rows[student]["status"] == "error" and said in rows[student]["message"], student
        page = (out / "students" / f"{stems[student]}.html").read_text("utf-8")
        assert str(escape(said)) in page and "error" in page, student
        # the log names the student and the stage; the traceback ends at the injected fault
        assert f"internal error while {stage} for {student!r}" in stderr
    assert stderr.count("Traceback (most recent call last)") == len(FAULTS)
    assert "Injected: injected into" in stderr
    index = (out / "index.html").read_text("utf-8")
    assert all(f">{student}</a>" in index for student in [*HEALTHY, *FAULTS])
    assert not (out / "feedback" / f"{stems['fee']}.ipynb").exists()


def test_the_guard_logs_a_repeated_bug_once_and_marks_each_failure_once(tmp_path: Path) -> None:
    log_path = tmp_path / "log.txt"
    with log_path.open("w") as log:
        guard = StageGuard(log)

        def broken(student: str) -> str:
            raise KeyError(student)

        results = [guard.run(SCORE, s, lambda f: f.message, broken, s) for s in ("ann", "bob", "ann")]
    text = log_path.read_text()
    assert text.count("Traceback") == 1 and text.count("internal error while scoring") == 2
    assert results[0] == results[2] and "(KeyError)" in results[0] and "'ann'" not in results[0]
    assert "KeyError: 'ann'" in text
    assert len(guard.failures["ann"]) == 1


@pytest.mark.parametrize("error", [GraderError("cannot reach the Dask scheduler"), KeyboardInterrupt()])
def test_user_errors_and_interrupts_still_end_the_run(error: BaseException) -> None:
    def stage() -> None:
        raise error

    with pytest.raises(type(error)):
        StageGuard().run(EXECUTE, "ann", lambda _: None, stage)


def test_a_failure_looking_for_near_copies_leaves_every_grade_and_the_summary_says_so(
    small_dataset: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "out"
    folder = class_folder(tmp_path, list(HEALTHY))
    monkeypatch.setattr(grader.executors, "grade_run", lambda *_: make_facts())

    def broken(*_: Any) -> None:
        raise Injected("injected into the near-copy search")

    monkeypatch.setattr(grader.pipeline, "find_near_copies", broken)
    assert grade_in_process(folder, out, small_dataset, tmp_path) == 0
    entries = json.loads((out / "grades.json").read_text("utf-8"))["students"]
    assert [(e["student"], e["status"], e["total"], e["similar"]) for e in entries] == [
        (student, "graded", 100.0, []) for student in HEALTHY
    ]
    assert "Near-copies were not looked for" in (out / "index.html").read_text("utf-8")
    assert f"internal error while {NEAR_COPIES} for 'the class'" in capsys.readouterr().err
