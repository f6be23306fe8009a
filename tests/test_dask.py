"""`grade --scheduler`: notebooks run on Dask workers and their facts come back to the grader."""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from distributed import Client, LocalCluster

from tests.conftest import ROOT, grader_environ, run_grade

pytestmark = pytest.mark.integration


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
