"""The pipeline's wiring, with runs faked: the reference notebook follows the cache's rule for a run lacking what
the rubric reads, and a session serves the rubric's dataset and asks the probe for what the rubric reads."""

from __future__ import annotations

import contextlib
import csv
import io
import json
import subprocess
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from msgspec.structs import replace

import grader.executors
import grader.pipeline
from grader.assignment import Assignment, DatasetSpec
from grader.cli import main
from grader.dataset import Dataset
from grader.execution.run import CellProgress
from grader.execution.settings import RunLimits, RunSettings
from grader.export.file_stems import file_stems
from grader.facts import Facts, KernelFacts
from grader.facts_cache import FactsCache, cache_key, fact_code_digest
from grader.pipeline import Options, run_reference, start_session
from grader.reevaluation_facts import Reevaluation
from grader.rubric.load import load_rubric
from grader.rubric.model import Rubric
from tests.factories import FIRST_LABELS, N_TEST, N_TRAIN, make_facts
from tests.lms_downloads import (
    D2L_CARA_OLD,
    GREETING,
    LATE_PERCENT,
    REFERENCE,
    by_student,
    canvas_zip,
    common_args,
    d2l_download,
    earned,
)
from tests.recorded_runs import DATA, DATASET, NEW, ROLES, SETTINGS, facts


def test_a_reference_never_run_before_runs_even_with_rescore(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    reference = tmp_path / "solution.ipynb"
    reference.write_text("{}")
    monkeypatch.setattr(grader.executors, "grade_run", lambda *_: NEW)
    options = Options(submissions=tmp_path, rescore=True, sandbox=False)
    assert run_reference(options, reference, DATASET, SETTINGS, FactsCache(tmp_path / "cache")) == NEW


def test_the_reference_follows_the_same_rule(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    reference = tmp_path / "solution.ipynb"
    reference.write_text("{}")
    cache = FactsCache(tmp_path / "cache")
    key = cache_key(reference.read_bytes(), DATASET, SETTINGS, fact_code_digest())
    cache.put(key, facts(ROLES, run=1))
    monkeypatch.setattr(grader.executors, "grade_run", lambda *_: NEW)
    options = Options(submissions=tmp_path, rescore=True, sandbox=False)

    assert run_reference(options, reference, DATASET, SETTINGS, cache) == NEW
    assert cache.get(key) == NEW
    assert "which 1 cached run did not record: running that notebook again" in capsys.readouterr().err
    # Now covered: the reference comes from the cache.
    monkeypatch.setattr(grader.executors, "grade_run", lambda *_: pytest.fail("the reference ran again"))
    assert run_reference(options, reference, DATASET, SETTINGS, cache) == NEW
    assert capsys.readouterr().err == ""


def test_a_session_serves_the_rubrics_dataset_and_asks_for_what_the_rubric_reads(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    reference = tmp_path / "solution.ipynb"
    reference.write_text("{}")
    assignment = Assignment(dataset=DatasetSpec(loader="fashion_mnist", npz="clothes.npz"), variables={"model": "net"})
    rubric = Rubric(
        title="Fashion",
        path=tmp_path / "rubric.yaml",
        reference=reference,
        limits=RunLimits(),
        sections=(),
        assignment=assignment,
        dataset=tmp_path / "clothes.npz",
    )
    seen: dict[str, Any] = {}

    def provision(option: Path | None, cache_dir: Path, *, loader: str) -> Dataset:
        seen["dataset"] = (option, loader)
        return DATASET

    def reference_run(options: Options, path: Path, dataset: Dataset, settings: RunSettings, cache: Any) -> Facts:
        seen["request"] = settings.request
        return NEW

    monkeypatch.setattr(grader.pipeline, "provision_dataset", provision)
    monkeypatch.setattr(grader.pipeline, "run_reference", reference_run)
    monkeypatch.setattr(grader.pipeline, "calibrate", lambda facts, rubric: None)
    monkeypatch.setattr(grader.pipeline, "dataset_facts", lambda dataset: DATA)
    session = start_session(Options(submissions=tmp_path, sandbox=False), rubric, tmp_path / "cache", 3)
    assert seen["dataset"] == (tmp_path / "clothes.npz", "fashion_mnist")
    assert seen["request"] == session.settings.request == rubric.probe_request()
    assert session.settings.request.loader == "fashion_mnist"
    assert "net" in session.settings.request.variables

    # The command line's --dataset comes first.
    start_session(Options(submissions=tmp_path, sandbox=False, dataset=tmp_path / "x.npz"), rubric, tmp_path / "c", 3)
    assert seen["dataset"] == (tmp_path / "x.npz", "fashion_mnist")


# --- LMS downloads graded with faked runs: naming, resubmissions and late arithmetic, decided before any kernel


def faked_run(path: Path, dataset: Dataset, settings: RunSettings, on_cell: CellProgress | None = None) -> Facts:
    """What a run records, without a kernel: nothing for a notebook that only prints, the perfect run otherwise."""
    if GREETING in path.read_text(encoding="utf-8"):
        return replace(
            make_facts(),
            kernel=KernelFacts.empty(settings.request),
            reevaluation=Reevaluation(ok=False, message="no trained model was saved"),
            dataset=settings.dataset,
        )
    return replace(make_facts(), dataset=settings.dataset)


def grade_with_faked_runs(folder: Path, *args: str | Path) -> dict[str, Any]:
    """`grade` on the command line's `args`, in this process, with every notebook's run faked."""
    out, stdout, stderr = folder / "reports", io.StringIO(), io.StringIO()
    argv = [*map(str, args), "--out", str(out), "--cache", str(folder / "cache"), "--no-sandbox"]
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(grader.executors, "grade_run", faked_run)
        patch.setattr(grader.pipeline, "ensure_built", lambda environment: environment)
        with contextlib.redirect_stdout(stdout), contextlib.redirect_stderr(stderr):
            code = main(argv)
    result = subprocess.CompletedProcess(argv, code, stdout.getvalue(), stderr.getvalue())
    assert code == 0, result.stderr[-3000:]
    return {"out": out, "tmp": folder, "result": result, "students": by_student(out)}


@pytest.fixture(scope="module")
def full_size(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Blank images in MNIST's sizes and first labels: what the faked runs' facts describe."""
    path = tmp_path_factory.mktemp("data") / "blank.npz"
    labels = np.array([*FIRST_LABELS, *range(10)] * (N_TRAIN // 20), dtype=np.uint8)
    blank = np.zeros((N_TRAIN, 28, 28), dtype=np.uint8)
    np.savez(path, x_train=blank, y_train=labels, x_test=blank[:N_TEST], y_test=labels[:N_TEST])
    return path


@pytest.fixture(scope="module")
def canvas(tmp_path_factory: pytest.TempPathFactory, full_size: Path) -> dict[str, Any]:
    tmp = tmp_path_factory.mktemp("canvas")
    return grade_with_faked_runs(tmp, canvas_zip(tmp), *common_args(tmp, full_size))


@pytest.fixture(scope="module")
def d2l(tmp_path_factory: pytest.TempPathFactory, full_size: Path) -> dict[str, Any]:
    tmp = tmp_path_factory.mktemp("d2l")
    archive, rubric, export = d2l_download(tmp)
    args: list[str | Path] = ["--dataset", full_size, "--rubric", rubric, "--reference", REFERENCE, "--jobs", "1"]
    graded = grade_with_faked_runs(tmp, archive, "--roster", export, *args)
    return {**graded, "title": load_rubric(rubric).title}


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
