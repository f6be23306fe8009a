"""A rubric that reads more than the cached runs recorded runs those notebooks again (no kernel: runs are faked).

Facts keep the probe request they were recorded for. A cached run is used as it is when its request covers
the rubric's (the same loader, the same names or more); otherwise that notebook runs again, with `--rescore`
too, and the grader says so once for the batch.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from msgspec.structs import replace

import grader.executors
import grader.pipeline
from grader.assignment import Assignment, DatasetSpec
from grader.dataset import Dataset
from grader.discover import Submission
from grader.errors import GraderError
from grader.execution.settings import RunLimits, RunSettings
from grader.executors import Executor, execute_all, run_on_worker
from grader.facts import (
    DatasetFacts,
    ExecutionFacts,
    Facts,
    KernelFacts,
    ProbeRequest,
    Reevaluation,
    facts_from_json,
)
from grader.facts_cache import FactsCache, Shortfall, cache_key, fact_code_digest, rerun_notice, shortfall
from grader.isolation import StageGuard
from grader.kernel_env import KernelEnvironment
from grader.pipeline import Options, executor_for, run_reference, start_session
from grader.rubric.model import Rubric

ROLES = ["model", "score", "x_test", "x_train", "y_test", "y_train"]
WANTED = ProbeRequest(loader="mnist", variables=sorted([*ROLES, "foo"]))
DATASET = Dataset(Path("mnist.npz"), "a" * 64, "option", True, 60_000, 10_000)
DATA = DatasetFacts(
    n_train=60_000,
    n_test=10_000,
    image_shape=[28, 28],
    classes=10,
    standin=True,
    description="test data",
    sha256="a" * 64,
    first_labels=[5, 0, 4],
)
ENVIRONMENT = KernelEnvironment((), "f" * 20, Path("env"))
SETTINGS = RunSettings(
    limits=RunLimits(), isolated=False, threads=1, request=WANTED, environment=ENVIRONMENT, dataset=DATA
)


def facts(variables: list[str], *, loader: str = "mnist", status: str = "completed", run: int = 0) -> Facts:
    """Facts recorded for a request of `variables`; `run` tells one run of a notebook from another."""
    kernel = replace(KernelFacts.empty(ProbeRequest(loader, sorted(variables))), summary_calls=run)
    execution = ExecutionFacts(status=status, message="", cells=[], stdout="", limits_hit=[], duration_s=1.0)
    return Facts(execution, kernel, Reevaluation(ok=False, message="not run"), DATA)


NEW = facts(WANTED.variables, run=2)  # what a run with the rubric's request records


# --- what a cached run lacks ---------------------------------------------------------------------------


def test_a_run_that_recorded_the_same_names_or_more_covers_the_rubric() -> None:
    assert shortfall(facts(WANTED.variables), WANTED) is None
    assert shortfall(facts([*WANTED.variables, "bar", "history"]), WANTED) is None


def test_a_run_lacking_a_name_or_serving_another_loader_does_not() -> None:
    assert shortfall(facts(ROLES), WANTED) == Shortfall(("foo",), None)
    assert shortfall(facts(["model", "x_train"]), WANTED) == Shortfall(
        ("foo", "score", "x_test", "y_test", "y_train"), None
    )
    assert shortfall(facts(WANTED.variables, loader="fashion_mnist"), WANTED) == Shortfall((), "fashion_mnist")


@pytest.mark.parametrize("status", ["unreadable", "grader_error"])
def test_facts_no_kernel_produced_need_no_run(status: str) -> None:
    assert shortfall(facts([], loader="", status=status), WANTED) is None


def test_the_notice_names_what_the_rubric_reads_and_how_many_runs_lack_it() -> None:
    one = rerun_notice([("bob", Shortfall(("foo",), None))], WANTED, rescore=False)
    assert one == "the rubric reads `foo`, which 1 cached run did not record: running that notebook again (bob)"

    students = [f"s{i:02}" for i in range(12)]
    lacks = [(s, Shortfall(("foo", "bar") if s == "s00" else ("foo",), None)) for s in students]
    many = rerun_notice(lacks, WANTED, rescore=True)
    assert many.startswith("the rubric reads `bar` and `foo`, which 12 cached runs did not record: running those")
    assert "even with --rescore" in many
    assert many.endswith("(s00, s01, s02, s03, s04 and 7 more)")

    loader = rerun_notice([("ada", Shortfall((), "mnist"))], ProbeRequest("fashion_mnist", []), rescore=False)
    assert loader.startswith("the rubric serves keras.datasets.fashion_mnist, where 1 cached run served mnist:")


def test_the_probe_request_is_not_part_of_the_cache_key() -> None:
    # So that a rubric reading a new name finds its old entries, and can tell what they lack.
    other = replace(WANTED, variables=["model"])
    digest = fact_code_digest()
    assert cache_key(b"{}", DATASET, SETTINGS, digest) == cache_key(
        b"{}", DATASET, dataclasses.replace(SETTINGS, request=other), digest
    )


# --- a batch: cached, lacking, and run again -----------------------------------------------------------


class Class:
    """A folder of notebooks whose cached facts were recorded for the given requests; None: not cached."""

    def __init__(self, tmp_path: Path, cached: dict[str, Facts | None]) -> None:
        self.cache = FactsCache(tmp_path / "cache")
        self.submissions = []
        self.keys = {}
        for student, old in cached.items():
            path = tmp_path / "subs" / f"{student}.ipynb"
            path.parent.mkdir(exist_ok=True)
            path.write_text(f'{{"student": "{student}"}}')
            self.submissions.append(Submission(student, path))
            self.keys[student] = cache_key(path.read_bytes(), DATASET, SETTINGS, fact_code_digest())
            if old is not None:
                self.cache.put(self.keys[student], old)

    def grade(self, executor: Executor, *, cached_only: bool = False) -> tuple[dict[str, Facts], list[str], list[str]]:
        """The facts of each student, who came from the cache, and what the grader said."""
        said: list[str] = []
        results = list(
            execute_all(
                self.submissions,
                DATASET,
                SETTINGS,
                self.cache,
                executor,
                StageGuard(),
                cached_only=cached_only,
                say=said.append,
            )
        )
        from_cache = [result.submission.student for result in results if result.cached]
        return {result.submission.student: result.facts for result in results}, from_cache, said


def recording(ran: list[str]) -> Executor:
    """An executor that records whom it ran and gives each the facts a run with the rubric's request gives."""

    def run(todo: list[tuple[Submission, str]]) -> Iterator[tuple[Submission, str, Facts, float]]:
        for sub, key in todo:
            ran.append(sub.student)
            yield sub, key, NEW, 1.0

    return run


def never(todo: list[tuple[Submission, str]]) -> Iterator[tuple[Submission, str, Facts, float]]:
    raise AssertionError(f"nothing should run, yet {[sub.student for sub, _ in todo]} did")


def test_cached_runs_that_cover_the_rubric_are_used_without_running(tmp_path: Path) -> None:
    ada, cyd = facts([*WANTED.variables, "bar"], run=1), facts([], loader="", status="unreadable")
    batch = Class(tmp_path, {"ada": ada, "cyd": cyd})
    for cached_only in (False, True):
        results, from_cache, said = batch.grade(never, cached_only=cached_only)
        assert results == {"ada": ada, "cyd": cyd}
        assert from_cache == ["ada", "cyd"]
        assert said == []


def test_a_cached_run_lacking_a_name_runs_again_and_is_replaced(tmp_path: Path) -> None:
    ada, bob = facts(WANTED.variables, run=1), facts(ROLES, run=1)
    batch = Class(tmp_path, {"ada": ada, "bob": bob, "new": None})
    ran: list[str] = []
    results, from_cache, said = batch.grade(recording(ran))
    assert sorted(ran) == ["bob", "new"]
    assert from_cache == ["ada"]
    assert results == {"ada": ada, "bob": NEW, "new": NEW}
    assert said == ["the rubric reads `foo`, which 1 cached run did not record: running that notebook again (bob)"]
    assert batch.cache.get(batch.keys["bob"]) == NEW
    # The next batch finds what it needs in the cache.
    _, from_cache, said = batch.grade(never)
    assert sorted(from_cache) == ["ada", "bob", "new"]
    assert said == []


def test_rescore_runs_the_lacking_notebooks_through_a_real_executor(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    students = [f"s{i:02}" for i in range(12)]
    batch = Class(tmp_path, {"ada": facts(WANTED.variables, run=1)} | {s: facts(ROLES, run=1) for s in students})
    ran: list[str] = []

    def fake_run(path: Path, dataset: Dataset, settings: RunSettings) -> Facts:
        assert settings.request == WANTED  # the notebook runs with the rubric's request
        ran.append(path.stem)
        return NEW

    monkeypatch.setattr(grader.executors, "grade_run", fake_run)
    options = Options(submissions=tmp_path / "subs", rescore=True, sandbox=False)
    executor = executor_for(options, DATASET, SETTINGS, 2, lambda: None, StageGuard())
    results, from_cache, (said,) = batch.grade(executor, cached_only=True)
    assert sorted(ran) == students
    assert from_cache == ["ada"]
    assert all(results[s] == NEW for s in students)
    assert said.startswith("the rubric reads `foo`, which 12 cached runs did not record: running those notebooks again")
    assert "even with --rescore" in said


def test_rescore_runs_again_a_notebook_whose_cached_facts_cannot_be_read_back(tmp_path: Path) -> None:
    """Issue 18.3: an unreadable entry costs its student one run, never the class (no exit 2), and only once."""
    batch = Class(tmp_path, {"ada": facts(WANTED.variables, run=1), "big": facts(WANTED.variables, run=1)})
    (batch.cache.root / f"{batch.keys['big']}.json").write_bytes(b'{"schema": 2, "truncated')
    ran: list[str] = []
    results, from_cache, (said,) = batch.grade(recording(ran), cached_only=True)
    assert (ran, from_cache, results["big"]) == (["big"], ["ada"], NEW)
    assert said == "cached facts that could not be read back: running those notebooks again (big)"
    # The run's facts were cached again: the next --rescore reads them.
    again: list[str] = []
    batch.cache.damaged.clear()
    results, from_cache, said_again = batch.grade(recording(again), cached_only=True)
    assert (again, sorted(from_cache), said_again) == ([], ["ada", "big"], [])


def test_rescore_with_a_notebook_never_run_is_an_error_before_anything_runs(tmp_path: Path) -> None:
    batch = Class(tmp_path, {"bob": facts(ROLES), "new": None})
    with pytest.raises(GraderError, match=r"^no cached facts for new: run without --rescore"):
        batch.grade(never, cached_only=True)


# --- the reference, and the wiring of the rubric into a session -----------------------------------------


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


def test_a_dask_worker_serves_the_graders_dataset_from_its_own_copy(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MNIST_GRADER_CACHE", str(tmp_path / "worker"))
    dataset = Dataset(Path("/elsewhere/clothes.npz"), "b" * 64, "option", True, 6, 2, (32, 32, 3), 4, "cifar10")
    served: list[Dataset] = []

    def fake_run(path: Path, data: Dataset, settings: RunSettings) -> Facts:
        served.append(data)
        return NEW

    monkeypatch.setattr(grader.executors, "grade_run", fake_run)
    monkeypatch.setattr(grader.executors, "locate", lambda requirements, cache: SETTINGS.environment)
    monkeypatch.setattr(grader.executors, "ensure_built", lambda environment: environment)
    text, _ = run_on_worker(b"{}", np.arange(3).tobytes(), dataset, SETTINGS)
    assert facts_from_json(text) == NEW
    (copy,) = served
    assert copy.path.parent == tmp_path / "worker"
    assert copy.path.read_bytes() == np.arange(3).tobytes()
    assert (copy.image_shape, copy.classes, copy.loader, copy.n_train, copy.sha256) == (
        (32, 32, 3),
        4,
        "cifar10",
        6,
        "b" * 64,
    )
