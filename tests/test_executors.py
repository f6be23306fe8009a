"""The executors: cached facts that cover the rubric are used without running, a cached run lacking what the rubric
reads runs again (with `--rescore` too: runs are faked here), a Dask worker serves the grader's dataset from its own
copy, and `grade --scheduler` runs a class on Dask workers (a real kernel)."""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from distributed import Client, LocalCluster

import grader.executors
import grader.pipeline
from grader.dataset import Dataset
from grader.discover import Submission
from grader.errors import GraderError
from grader.execution.settings import RunSettings
from grader.executors import Executor, execute_all, run_on_worker
from grader.facts import Facts, facts_from_json
from grader.facts_cache import FactsCache, cache_key, fact_code_digest
from grader.isolation import StageGuard
from grader.pipeline import Options, executor_for
from tests.conftest import ROOT, grader_environ, run_grade
from tests.recorded_runs import DATASET, NEW, ROLES, SETTINGS, WANTED, facts


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

    def fake_run(path: Path, dataset: Dataset, settings: RunSettings, on_cell: object = None) -> Facts:
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


def test_a_dask_worker_serves_the_graders_dataset_from_its_own_copy(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MNIST_GRADER_CACHE", str(tmp_path / "worker"))
    dataset = Dataset(Path("/elsewhere/clothes.npz"), "b" * 64, "option", True, 6, 2, (32, 32, 3), 4, "cifar10")
    served: list[Dataset] = []

    def fake_run(path: Path, data: Dataset, settings: RunSettings, on_cell: object = None) -> Facts:
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


def _scheduled_keys(dask_scheduler) -> list[str]:  # noqa: ANN001 - runs inside the scheduler
    """Every task key the scheduler saw, from its transition log."""
    return sorted({str(entry[0]) for entry in dask_scheduler.transition_log})


def _executed_keys(dask_worker) -> list[str]:  # noqa: ANN001 - runs inside each worker process
    """The task keys this worker executed to completion, from its state machine's log."""
    return sorted({str(e[0]) for e in dask_worker.state.log if e[1:3] == ("executing", "memory")})


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[LocalCluster]:
    """Two single-threaded worker processes on this machine, as `dask worker` would start them on others."""
    # Where workers keep their copy of the data and find the homework environment.
    env = {"MNIST_GRADER_CACHE": grader_environ(tmp_path / "worker-cache")["MNIST_GRADER_CACHE"]}
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None, env=env) as local:
        yield local


@pytest.mark.integration
def test_scheduler_runs_every_notebook_on_workers(cluster: LocalCluster, small_dataset: Path, tmp_path: Path) -> None:
    folder = tmp_path / "submissions"
    folder.mkdir()
    for name in ("ada_perfect.ipynb", "eli_relu.ipynb"):
        shutil.copy(ROOT / "submissions" / name, folder / name)
    cache = tmp_path / "cache"
    out = tmp_path / "out"

    result = run_grade(
        folder,
        "--scheduler",
        cluster.scheduler_address,
        "--dataset",
        small_dataset,
        "--out",
        out,
        "--jobs",
        "2",
        cache=cache,
        timeout=300,
    )

    assert result.returncode == 0, result.stderr
    grades = {s["student"]: s for s in json.loads((out / "grades.json").read_text())["students"]}
    assert grades["ada_perfect"]["total"] == 100
    assert grades["eli_relu"]["total"] == 90
    assert grades["eli_relu"]["sections"]["build"]["points"] == 40

    # The facts in the cache are exactly the results of `grade-<cache key>` tasks that the scheduler handed
    # to its workers: the reference and both students ran there, and nothing ran in the grader process.
    cached = {p.stem for p in (cache / "facts").glob("*.json")}
    assert len(cached) == 3
    with Client(cluster) as client:
        scheduled = client.run_on_scheduler(_scheduled_keys)
        executed = client.run(_executed_keys)  # {worker address: keys}
    assert {k.removeprefix("grade-") for k in scheduled if k.startswith("grade-")} == cached
    on_workers = {k.removeprefix("grade-") for keys in executed.values() for k in keys if k.startswith("grade-")}
    assert on_workers == cached
    # Each worker received the dataset from the grader (scattered) and kept its own copy.
    assert list((tmp_path / "worker-cache").glob("dataset-*.npz"))
