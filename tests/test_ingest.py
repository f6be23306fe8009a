"""LMS downloads and work arriving over time, through the real CLI: a Canvas zip, Moodle folders, links and
pipes among the submissions, and `grade --watch` on a folder that fills while it runs.

The notebooks are tiny (a print, or the reference's first two cells for points to take a late penalty
from), so each kernel costs its start-up; the reference run is shared through the session cache.
"""

from __future__ import annotations

import csv
import json
import os
import signal
import stat
import subprocess
import sys
import time
import zipfile
from pathlib import Path
from typing import Any

import nbformat
import pytest
import yaml

from grader.export import file_stems
from grader.sandbox.host import bwrap_path
from tests.conftest import ROOT, fast_rubric, grader_environ, run_grade

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(bwrap_path() is None, reason="bubblewrap (bwrap) is not installed"),
]
REFERENCE = ROOT / "reference" / "solution.ipynb"
LATE_PERCENT = 50


def notebook_bytes(*sources: str) -> bytes:
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "language": "python", "display_name": "Python 3"}
    nb.cells = [nbformat.v4.new_code_cell(source) for source in sources]
    return nbformat.writes(nb).encode("utf-8")


def prepare_only() -> bytes:
    """The reference's imports and data preparation: the prepare section's points, in seconds."""
    nb = nbformat.read(str(REFERENCE), as_version=4)
    return notebook_bytes(*[c.source for c in nb.cells if c.cell_type == "code"][:2])


def late_rubric(folder: Path) -> Path:
    path = fast_rubric(folder)
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    data["late"] = {"penalty_percent": LATE_PERCENT}
    path.write_text(yaml.safe_dump(data), encoding="utf-8")
    return path


def common_args(folder: Path, small_dataset: Path) -> list[str | Path]:
    return ["--dataset", small_dataset, "--rubric", late_rubric(folder), "--reference", REFERENCE, "--jobs", "1"]


def by_student(out: Path) -> dict[str, dict[str, Any]]:
    return {s["student"]: s for s in json.loads((out / "grades.json").read_text("utf-8"))["students"]}


def earned(entry: dict[str, Any]) -> float:
    return sum(s["points"] for s in entry["sections"].values())


# --- a Canvas "Download Submissions" zip ----------------------------------------------------------------


@pytest.fixture(scope="module")
def canvas(tmp_path_factory: pytest.TempPathFactory, small_dataset: Path, cache_dir: Path) -> dict[str, Any]:
    tmp = tmp_path_factory.mktemp("canvas")
    archive = tmp / "zips" / "submissions.zip"
    archive.parent.mkdir()
    printing = notebook_bytes('print("hello from doejohn")')
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("smithjane_48213_1930044_mnist-1.ipynb", printing)  # replaced by -2: never run
        zf.writestr("smithjane_LATE_48213_1930044_mnist-2.ipynb", prepare_only())
        zf.writestr("doejohn_50001_1930100_hw.ipynb", printing)
        zf.writestr("doejohn_50001_1930100_notes.pdf", b"%PDF-1.4")
        zf.writestr("../escape.ipynb", printing)
        link = zipfile.ZipInfo("leelink_50002_1930200_hw.ipynb")
        link.external_attr = (stat.S_IFLNK | 0o777) << 16
        zf.writestr(link, str(REFERENCE))
    out = tmp / "reports"
    result = run_grade(archive, "--out", out, *common_args(tmp, small_dataset), cache=cache_dir)
    assert result.returncode == 0, result.stderr[-3000:]
    return {"out": out, "tmp": tmp, "result": result, "students": by_student(out)}


def test_canvas_zip_ids_names_and_the_newest_resubmission(canvas: dict[str, Any]) -> None:
    students = canvas["students"]
    assert set(students) == {"48213", "50001"}  # the link member is not a student
    jane, john = students["48213"], students["50001"]
    assert (jane["name"], jane["lms"], john["name"]) == ("smithjane", "canvas", "doejohn")
    assert jane["status"] == john["status"] == "graded"
    assert jane["ignored"] == ["smithjane_48213_1930044_mnist-1.ipynb"]
    assert "Graded 2 notebook(s)" in canvas["result"].stdout


def test_canvas_late_penalty_in_every_export(canvas: dict[str, Any]) -> None:
    jane, john = canvas["students"]["48213"], canvas["students"]["50001"]
    assert earned(jane) > 0, "the prepare cells should earn points to take the penalty from"
    assert jane["late"] and jane["late_penalty"] == pytest.approx(earned(jane) * LATE_PERCENT / 100)
    assert jane["total"] == pytest.approx(earned(jane) - jane["late_penalty"])
    assert not john["late"] and john["late_penalty"] == 0 and john["total"] == earned(john)

    out = canvas["out"]
    rows = {r["student"]: r for r in csv.DictReader((out / "grades.csv").read_text("utf-8").splitlines())}
    assert (rows["48213"]["name"], rows["48213"]["late"], rows["50001"]["late"]) == ("smithjane", "yes", "")
    assert float(rows["48213"]["late_penalty"]) == pytest.approx(jane["late_penalty"])
    assert float(rows["48213"]["total"]) == pytest.approx(jane["total"])
    # No roster: the Canvas user id fills the ID column that Canvas's import matches on.
    canvas_rows = {r[1]: r for r in list(csv.reader((out / "canvas.csv").read_text("utf-8").splitlines()))[2:]}
    assert canvas_rows["48213"][0] == "smithjane" and float(canvas_rows["48213"][-1]) == pytest.approx(jane["total"])
    assert canvas_rows["50001"][0] == "doejohn"
    gradescope = json.loads((out / "gradescope" / "48213" / "results.json").read_text("utf-8"))
    assert gradescope["score"] == pytest.approx(jane["total"])

    page = (out / "students" / "48213.html").read_text("utf-8")
    assert "smithjane" in page and "Submitted late" in page and "smithjane_48213_1930044_mnist-1.ipynb" in page
    index = (out / "index.html").read_text("utf-8")
    assert "−" + f"{jane['late_penalty']:g}" in index and "Totals are after the penalty" in index


def test_canvas_zip_members_not_graded_are_listed_and_nothing_escapes(canvas: dict[str, Any]) -> None:
    out = canvas["out"]
    ignored = {i["path"]: i["reason"] for i in json.loads((out / "grades.json").read_text("utf-8"))["ignored"]}
    assert ignored["doejohn_50001_1930100_notes.pdf"] == "not a notebook"
    assert ignored["../escape.ipynb"] == "its path leads outside the extraction folder"
    assert ignored["leelink_50002_1930200_hw.ipynb"] == "a symbolic link (links are not followed)"
    assert "older submission of smithjane" in ignored["smithjane_48213_1930044_mnist-1.ipynb"]
    index = (out / "index.html").read_text("utf-8")
    assert "4 file(s) found but not graded" in index and "../escape.ipynb" in index
    assert not (canvas["tmp"] / "escape.ipynb").exists()
    assert sorted(p.name for p in (canvas["tmp"] / "zips").iterdir()) == ["submissions.zip"]


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
    env = grader_environ(cache_dir)
    args = [folder, "--watch", "--out", out, *common_args(tmp_path, small_dataset)]
    with log.open("w") as stderr:
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
        stdout, _ = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 0, log.read_text()[-3000:]
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
