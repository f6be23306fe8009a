"""LMS downloads and work arriving over time, through the real CLI in real kernels: one smoke test per LMS path
(a Canvas zip, a D2L zip with its grades export, Moodle folders under `grade --watch` with links and pipes among
the submissions). Naming, resubmissions and late arithmetic are decided before any kernel runs: they are tested
with faked runs in tests/test_pipeline.py, on the same downloads (tests/lms_downloads.py).

The notebooks are tiny (a print, or the reference's first two cells for points to take a late penalty
from), so each kernel costs its start-up; the reference run is shared through the session cache.
"""

from __future__ import annotations

import contextlib
import csv
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from grader.export.file_stems import file_stems
from grader.sandbox.host import bwrap_path
from tests.conftest import ROOT, grader_environ, run_grade
from tests.lms_downloads import (
    LATE_PERCENT,
    REFERENCE,
    by_student,
    canvas_zip,
    common_args,
    d2l_download,
    earned,
    notebook_bytes,
)

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(bwrap_path() is None, reason="bubblewrap (bwrap) is not installed"),
]


def test_a_canvas_zip_is_graded_with_its_late_penalty(tmp_path: Path, small_dataset: Path, cache_dir: Path) -> None:
    out = tmp_path / "reports"
    result = run_grade(canvas_zip(tmp_path), "--out", out, *common_args(tmp_path, small_dataset), cache=cache_dir)
    assert result.returncode == 0, result.stderr[-3000:]
    students = by_student(out)
    assert set(students) == {"48213", "50001"} and "Graded 2 notebook(s)" in result.stdout
    jane, john = students["48213"], students["50001"]
    assert jane["status"] == john["status"] == "graded"
    assert earned(jane) > 0, "the prepare cells should earn points to take the penalty from"
    assert jane["late"] and jane["total"] == pytest.approx(earned(jane) * (100 - LATE_PERCENT) / 100)
    rows = {r[1]: r for r in list(csv.reader((out / "canvas.csv").read_text("utf-8").splitlines()))[2:]}
    assert float(rows["48213"][-1]) == pytest.approx(jane["total"])


def test_a_d2l_download_is_graded_with_lateness_from_the_due_date(
    tmp_path: Path, small_dataset: Path, cache_dir: Path
) -> None:
    archive, rubric, export = d2l_download(tmp_path)
    out = tmp_path / "reports"
    args = ["--dataset", small_dataset, "--rubric", rubric, "--reference", REFERENCE, "--jobs", "1"]
    result = run_grade(archive, "--out", out, "--roster", export, *args, cache=cache_dir)
    assert result.returncode == 0, result.stderr[-3000:]
    students = by_student(out)
    assert students["Eve Zip"]["status"] == "error"
    assert all(students[s]["status"] == "graded" for s in ("Cara Diaz", "Kim Park", "Jean-Luc Ngô", "Dana Nobody"))
    jean = students["Jean-Luc Ngô"]
    assert earned(jean) > 0, "the prepare cells should earn points to take the penalty from"
    assert jean["late_days"] == 2 and jean["total"] == pytest.approx(earned(jean) * 0.8)
    with (out / "d2l.csv").open(encoding="utf-8", newline="") as file:
        rows = {r["OrgDefinedId"]: r for r in csv.DictReader(file)}
    assert float(next(v for k, v in rows["#20067932"].items() if k.endswith("Points Grade"))) == pytest.approx(
        jean["total"]
    )


# --- Moodle folders, links and pipes, and `--watch` --------------------------------------------------------


def test_watch_grades_moodle_folders_links_pipes_and_notebooks_as_they_arrive(
    tmp_path: Path, small_dataset: Path, cache_dir: Path
) -> None:
    folder = tmp_path / "sync"
    moodle = folder / "Ana Lima_771_assignsubmission_file_"
    moodle.mkdir(parents=True)
    (moodle / "mnist.ipynb").write_bytes(notebook_bytes('print("hello from Ana")'))
    os.mkfifo(folder / "x.ipynb")  # once hung the whole run
    (folder / "solution.ipynb").symlink_to(REFERENCE)  # once followed, and graded 100
    out = tmp_path / "reports"
    log = tmp_path / "grade.log"
    env = {**grader_environ(cache_dir), "PYTHONFAULTHANDLER": "1"}  # SIGABRT prints where each thread is
    args = [folder, "--watch", "--out", out, *common_args(tmp_path, small_dataset)]
    with log.open("w") as stderr, interruptible_children():
        proc = subprocess.Popen(
            [sys.executable, "-m", "grader", *map(str, args)],
            cwd=ROOT,
            env=env,
            stderr=stderr,
            text=True,
            stdout=subprocess.PIPE,
        )
    try:
        wait_for(lambda: "Watching" in log.read_text(), proc, log, 600)
        first = by_student(out)
        assert set(first) == {"771", "x", "solution"}
        assert (first["771"]["name"], first["771"]["lms"], first["771"]["status"]) == ("Ana Lima", "moodle", "graded")
        for name, kind in (("x", "a named pipe (FIFO)"), ("solution", "a symbolic link")):
            assert first[name]["status"] == "error" and first[name]["total"] == 0
            assert f"is {kind}, not a regular file" in first[name]["message"]
        report = (out / "students" / f"{file_stems(['x'])['x']}.html").read_text("utf-8")
        assert "named pipe (FIFO)" in report

        # A notebook arrives in two writes with a pause between: the half-written file is never graded.
        arriving = notebook_bytes('print("made it")')
        target = folder / "late_arrival.ipynb"
        with target.open("wb") as fh:
            fh.write(arriving[: len(arriving) // 2])
            fh.flush()
            time.sleep(2.5)
            fh.write(arriving[len(arriving) // 2 :])
        wait_for(lambda: "late_arrival" in by_student_or_empty(out), proc, log, 300)
        proc.send_signal(signal.SIGINT)
        stdout = ""
        with contextlib.suppress(subprocess.TimeoutExpired):  # still running: failed below, with its stacks
            stdout, _ = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:  # a hang: the log gets every thread's stack before the kill
            proc.send_signal(signal.SIGABRT)
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(timeout=10)
            proc.kill()
            proc.wait()
    assert proc.returncode == 0, log.read_text()[-6000:]
    assert "Graded 4 notebook(s)" in stdout
    students = by_student(out)
    arrived = students["late_arrival"]
    assert arrived["status"] == "graded" and arrived["message"] == "", arrived
    # One grading of the new file only, and not as an unreadable half.
    lines = [line for line in log.read_text().splitlines() if line.startswith("late_arrival")]
    assert len(lines) == 1 and "unreadable" not in lines[0], lines
    # Consistent outputs: whole files, a report for every student, nothing half-renamed.
    assert not list(out.rglob("*.tmp"))
    stems = file_stems(students)
    assert {p.stem for p in (out / "students").glob("*.html")} == set(stems.values())
    index = (out / "index.html").read_text("utf-8")
    assert all(f"students/{stem}.html" in index for stem in stems.values())
    assert len(list(csv.reader((out / "grades.csv").read_text("utf-8").splitlines()))) == 1 + len(students)


@contextlib.contextmanager
def interruptible_children() -> Iterator[None]:
    """Children started inside get SIGINT's default, as at a terminal. A shell that starts pytest in the background
    leaves SIGINT ignored, and a child inherits that: the grader would then stop on this test's Ctrl-C only when it
    came while the outputs were being written (which hold a Ctrl-C and raise it after)."""
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


def by_student_or_empty(out: Path) -> dict[str, dict[str, Any]]:
    try:
        return by_student(out)
    except (OSError, ValueError):
        return {}


def wait_for(condition, proc: subprocess.Popen[str], log: Path, seconds: float) -> None:  # noqa: ANN001
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return
        if proc.poll() is not None:
            pytest.fail(f"grade --watch exited with {proc.returncode}: {log.read_text()[-3000:]}")
        time.sleep(0.3)
    pytest.fail(f"timed out; the log ends: {log.read_text()[-3000:]}")
