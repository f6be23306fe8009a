"""Watch mode without a kernel: when a file counts as settled, and what leaves the outputs with its notebook."""

from __future__ import annotations

import os
import time
from pathlib import Path

from grader.watch import Settling, remove_outputs

WHOLE = b'{"cells": [], "metadata": {}, "nbformat": 4, "nbformat_minor": 5}'


def fresh(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    now = time.time()
    os.utime(path, (now, now))
    return path


def test_a_file_is_graded_once_it_has_held_still_and_parses(tmp_path: Path) -> None:
    settling = Settling(quiet_s=1.0, grace_s=30.0)
    path = fresh(tmp_path / "a.ipynb", WHOLE[:20])
    assert not settling.ready(path, 100.0)  # just written: its quiet period starts
    assert not settling.ready(path, 100.5)
    assert not settling.ready(path, 102.0)  # still, but half a notebook: the writer may be paused
    fresh(path, WHOLE)
    assert not settling.ready(path, 102.5)  # changed: the quiet period starts again
    assert settling.ready(path, 103.6)


def test_a_file_that_never_parses_is_graded_after_the_grace_period(tmp_path: Path) -> None:
    settling = Settling(quiet_s=1.0, grace_s=30.0)
    path = fresh(tmp_path / "a.ipynb", b"not json")
    assert not settling.ready(path, 0.0)
    assert not settling.ready(path, 29.0)
    assert settling.ready(path, 30.5)  # graded as it is: its report says it is not a notebook


def test_files_untouched_for_a_while_are_ready_at_first_sight(tmp_path: Path) -> None:
    path = tmp_path / "a.ipynb"
    path.write_bytes(WHOLE)
    os.utime(path, (time.time() - 60, time.time() - 60))
    pipe = tmp_path / "p.ipynb"
    os.mkfifo(pipe)
    os.utime(pipe, (time.time() - 60, time.time() - 60))
    settling = Settling()
    assert settling.ready(path, 5.0)
    assert settling.ready(pipe, 5.0)  # never opened: grading says what it is


def test_outputs_of_students_who_left_are_removed(tmp_path: Path) -> None:
    for stem in ("ada", "bob"):
        (tmp_path / "students").mkdir(exist_ok=True)
        (tmp_path / "students" / f"{stem}.html").write_text("report")
        (tmp_path / "gradescope" / stem).mkdir(parents=True)
        (tmp_path / "gradescope" / stem / "results.json").write_text("{}")
    remove_outputs(tmp_path, {"bob"})
    assert sorted(p.name for p in (tmp_path / "students").iterdir()) == ["ada.html"]
    assert sorted(p.name for p in (tmp_path / "gradescope").iterdir()) == ["ada"]
