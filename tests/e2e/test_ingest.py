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
from grader.rubric.load import load_rubric
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


# --- a D2L Brightspace download, with lateness from the due date, and d2l.csv -----------------------------

D2L_DUE = "2026-12-01T23:59:00-06:00"
D2L_CARA_OLD = "118815-463470 - Cara Diaz - Dec 1, 2026 1100 PM/mnist.ipynb"
D2L_EXPORT = (
    "OrgDefinedId,Username,Last Name,First Name,Email,HW1 Points Grade <Numeric MaxPoints:100>,End-of-Line Indicator\n"
    "#20067930,cdiaz,Diaz,Cara,cdiaz@example.edu,,#\n"
    "#20067931,kpark,Park,Kim,kpark@example.edu,,#\n"
    "#20067932,jngo,Ngo,Jean-Luc,jngo@example.edu,,#\n"
    "#20067935,ezip,Zip,Eve,ezip@example.edu,,#\n"
)


@pytest.fixture(scope="module")
def d2l(tmp_path_factory: pytest.TempPathFactory, small_dataset: Path, cache_dir: Path) -> dict[str, Any]:
    """A D2L download zip graded with a due date and a per-day late policy, and D2L's grades export as roster.

    Four notebooks run: three that print (Cara on time after a resubmission, Kim 3 minutes late within the grace,
    Dana 9 days late) and one that earns the prepare section's points (Jean-Luc 1.5 days late: 20% off). Eve's
    notebook inflates 1000 times: refused alone, without a kernel. The arithmetic itself is tested in
    tests/test_late.py without kernels.
    """
    tmp = tmp_path_factory.mktemp("d2l")
    rubric = late_rubric(tmp)
    data = yaml.safe_load(rubric.read_text(encoding="utf-8"))
    data["due"] = D2L_DUE
    data["late"] = {"penalty_percent_per_day": 10, "grace_minutes": 5, "max_days": 5}
    rubric.write_text(yaml.safe_dump(data), encoding="utf-8")
    archive = tmp / "HW1 Download Dec 12, 2026 910 AM.zip"
    printing = notebook_bytes('print("hello")')
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr(D2L_CARA_OLD, printing)
        zf.writestr("118901-463470 - Cara Diaz - Dec 1, 2026 1145 PM/mnist.ipynb", printing)
        zf.writestr("118817-463471 - Kim Park - Dec 2, 2026 1202 AM - mnist.ipynb", printing)
        zf.writestr("118820-463475 - Jean-Luc Ngô - Dec 3, 2026 1159 AM - hw - final.ipynb", prepare_only())
        zf.writestr("118830-463480 - Dana Nobody - Dec 10, 2026 1159 PM/mnist.ipynb", printing)
        zf.writestr("118840-463490 - Eve Zip - Dec 1, 2026 1000 PM/mnist.ipynb", b'"' + b"0" * (8 << 20) + b'"')
        zf.writestr("index.html", b"<html></html>")
        zf.writestr(".DS_Store", b"")
    export = tmp / "d2l-export.csv"
    export.write_text(D2L_EXPORT, encoding="utf-8-sig")
    out = tmp / "reports"
    args = ["--dataset", small_dataset, "--rubric", rubric, "--reference", REFERENCE, "--jobs", "1"]
    # No notebook here runs long: generous limits keep the reference's 20 epochs whole on a busy machine.
    limits = ["--cell-timeout", "600", "--timeout", "900"]
    result = run_grade(archive, "--out", out, "--roster", export, *args, *limits, cache=cache_dir)
    assert result.returncode == 0, result.stderr[-3000:]
    return {"out": out, "result": result, "students": by_student(out), "title": load_rubric(rubric).title}


def test_d2l_download_names_resubmissions_and_files_not_graded(d2l: dict[str, Any]) -> None:
    students = d2l["students"]
    assert set(students) == {"Cara Diaz", "Kim Park", "Jean-Luc Ngô", "Dana Nobody", "Eve Zip"}
    cara = students["Cara Diaz"]
    assert (cara["lms"], cara["status"], cara["ignored"]) == ("d2l", "graded", [D2L_CARA_OLD])
    assert cara["submitted_at"] == "2026-12-01T23:45:00-06:00" and not cara["late"]
    eve = students["Eve Zip"]  # issue 18.1: one notebook over a per-member bound costs that student only
    assert eve["status"] == "error" and "inflates more than 200 times its compressed size" in eve["message"]
    ignored = {i["path"]: i["reason"] for i in json.loads((d2l["out"] / "grades.json").read_text("utf-8"))["ignored"]}
    assert "older submission of Cara Diaz" in ignored[D2L_CARA_OLD]
    assert ignored["index.html"] == ignored[".DS_Store"] == "not a notebook"


def test_d2l_lateness_from_the_due_date(d2l: dict[str, Any]) -> None:
    students = d2l["students"]
    kim, jean, dana = students["Kim Park"], students["Jean-Luc Ngô"], students["Dana Nobody"]
    assert (kim["late"], kim["late_by_minutes"], kim["late_penalty"]) == (False, 3.0, 0.0)  # within the grace
    assert earned(jean) > 0, "the prepare cells should earn points to take the penalty from"
    assert (jean["late"], jean["late_days"], jean["late_by_minutes"]) == (True, 2, 36 * 60)
    assert jean["late_penalty"] == pytest.approx(earned(jean) * 0.2) and jean["total"] == pytest.approx(
        earned(jean) * 0.8
    )
    assert (dana["late_days"], dana["total"]) == (9, 0)
    stems = file_stems(students)
    page = (d2l["out"] / "students" / f"{stems['Jean-Luc Ngô']}.html").read_text("utf-8")
    assert "Submitted Dec 3, 2026 11:59 AM (UTC-06:00), 1 day 12 h late (2 started days)" in page
    assert "2 × 10% = 20%" in page
    page = (d2l["out"] / "students" / f"{stems['Dana Nobody']}.html").read_text("utf-8")
    assert "more than the 5 days late the rubric accepts, so it earns 0" in page


def test_d2l_csv_reads_back_with_the_roster_ids(d2l: dict[str, Any]) -> None:
    students = d2l["students"]
    with (d2l["out"] / "d2l.csv").open(encoding="utf-8", newline="") as file:
        rows = {r["OrgDefinedId"]: r for r in csv.DictReader(file)}
    points = f"{d2l['title']} Points Grade"
    assert {k: (r["Username"], r["End-of-Line Indicator"]) for k, r in rows.items()} == {
        "#20067930": ("cdiaz", "#"),
        "#20067931": ("kpark", "#"),
        "#20067932": ("jngo", "#"),  # "Ngô" in the download, "Ngo" in the export
        "#20067935": ("ezip", "#"),
    }
    assert float(rows["#20067932"][points]) == pytest.approx(students["Jean-Luc Ngô"]["total"])
    assert float(rows["#20067935"][points]) == 0
    result = d2l["result"]
    assert "grade: warning: 'Dana Nobody' matches no row of d2l-export.csv: left out of d2l.csv" in result.stderr
    assert "1 warning(s) above" in result.stdout


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
