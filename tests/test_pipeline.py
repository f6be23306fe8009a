"""The pipeline's wiring, with runs faked: the reference notebook follows the cache's rule for a run lacking what
the rubric reads, and a session serves the rubric's dataset and asks the probe for what the rubric reads."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

import grader.executors
import grader.pipeline
from grader.assignment import Assignment, DatasetSpec
from grader.dataset import Dataset
from grader.execution.settings import RunLimits, RunSettings
from grader.facts import (
    Facts,
)
from grader.facts_cache import FactsCache, cache_key, fact_code_digest
from grader.pipeline import Options, run_reference, start_session
from grader.rubric.model import Rubric
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
