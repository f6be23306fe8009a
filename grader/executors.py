"""Runs notebooks where they are to run (threads on this machine, or Dask workers) and takes facts from the cache.

Each executor turns a list of (submission, cache key) into facts as they finish; `execute_all` asks one
only for what the facts cache does not hold (or holds without something the rubric reads), and caches what
it returns. An executor starts nothing until it is given work, so one can stand by while a class is
re-scored from the cache.
"""

from __future__ import annotations

import functools
import hashlib
import os
import time
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor, as_completed
from dataclasses import dataclass, replace
from pathlib import Path

from grader.atomic_write import atomic_write
from grader.dataset import Dataset
from grader.discover import Submission
from grader.errors import GraderError
from grader.execution.notebook import too_large
from grader.execution.run import grade_run
from grader.execution.settings import RunSettings, not_run_facts
from grader.facts import Facts, facts_from_json, facts_to_json
from grader.facts_cache import FactsCache, Shortfall, cache_key, installed_code_digest, rerun_notice, shortfall
from grader.files import FileTooLarge, NotRegularFile, read_regular_file
from grader.isolation import DECODE, EXECUTE, StageFailure, StageGuard
from grader.kernel_env import ensure_built, locate
from grader.sandbox.host import require_bwrap

Executor = Callable[[list[tuple[Submission, str]]], Iterator[tuple[Submission, str, Facts, float]]]


def failure_facts(failure: StageFailure, settings: RunSettings) -> Facts:
    """What stands in for a student's facts when the grader itself failed to produce or read them."""
    return not_run_facts("grader_error", failure.message, settings)


# Told which code cell of which submission starts: its number and how many there are.
SubmissionProgress = Callable[[Submission, int, int], None]


def local_executor(
    dataset: Dataset,
    settings: RunSettings,
    jobs: int,
    on_start: Callable[[], None],
    guard: StageGuard,
    on_cell: SubmissionProgress | None = None,
) -> Executor:
    """Runs notebooks on this machine, `jobs` at a time; `on_cell` hears which code cell each one is running."""

    def run(todo: list[tuple[Submission, str]]) -> Iterator[tuple[Submission, str, Facts, float]]:
        if settings.isolated:
            require_bwrap()  # checked here too: a --rescore run has not checked it, yet may run some notebooks

        def one(sub: Submission) -> tuple[Facts, float]:
            on_start()
            started = time.monotonic()
            cells = functools.partial(on_cell, sub) if on_cell is not None else None
            return grade_run(sub.path, dataset, settings, cells), time.monotonic() - started

        with ThreadPoolExecutor(max_workers=max(1, jobs)) as pool:
            futures: dict[Future[tuple[Facts, float]], tuple[Submission, str]] = {
                pool.submit(one, sub): (sub, key) for sub, key in todo
            }
            for future in as_completed(futures):
                sub, key = futures[future]
                facts, seconds = guard.run(
                    EXECUTE,
                    sub.student,
                    lambda failure: (failure_facts(failure, settings), 0.0),
                    future.result,
                )
                yield sub, key, facts, seconds

    return run


def dask_executor(
    address: str, dataset: Dataset, settings: RunSettings, on_start: Callable[[], None], guard: StageGuard
) -> Executor:
    """Sends each execution to a dask.distributed worker, which sandboxes it on its own host."""
    try:
        from distributed import Client
        from distributed import as_completed as dask_completed
    except ImportError:  # pragma: no cover - dask is a declared dependency
        raise GraderError("the Dask backend needs `pip install 'dask[distributed]'`") from None

    def run(todo: list[tuple[Submission, str]]) -> Iterator[tuple[Submission, str, Facts, float]]:
        try:
            client = Client(address, timeout="20s")
        except OSError as exc:
            raise GraderError(f"cannot reach the Dask scheduler at {address}: {exc}") from None
        with client:
            data = client.scatter(dataset.path.read_bytes(), broadcast=True)
            futures = {}
            for sub, key in todo:
                on_start()
                future = client.submit(
                    run_on_worker,
                    read_regular_file(sub.path, settings.limits.notebook_bytes),
                    data,
                    dataset,
                    settings,
                    key=f"grade-{key}",
                    pure=False,
                )
                futures[future] = (sub, key)
            for future in dask_completed(futures):
                sub, key = futures[future]
                outcome: tuple[str, float] | StageFailure = guard.run(
                    EXECUTE, sub.student, lambda failure: failure, future.result
                )
                if isinstance(outcome, StageFailure):
                    yield sub, key, failure_facts(outcome, settings), 0.0
                    continue
                text, seconds = outcome
                facts = guard.run(DECODE, sub.student, lambda f: failure_facts(f, settings), facts_from_json, text)
                yield sub, key, facts, seconds

    return run


def run_on_worker(notebook: bytes, dataset_bytes: bytes, dataset: Dataset, settings: RunSettings) -> tuple[str, float]:
    """Executed on a Dask worker: materialises the inputs locally, runs the sandbox, returns facts as JSON.

    `dataset` is the grader's, whose path is the grader's own: the worker serves its copy of the same bytes.
    """
    import tempfile

    cache = Path(os.environ.get("MNIST_GRADER_CACHE", Path(tempfile.gettempdir()) / "mnist-grader-worker"))
    cache.mkdir(parents=True, exist_ok=True)
    data_path = cache / f"dataset-{dataset.sha256[:16]}.npz"
    if not data_path.exists() or hashlib.sha256(data_path.read_bytes()).hexdigest() != dataset.sha256:
        atomic_write(data_path, dataset_bytes)
    dataset = replace(dataset, path=data_path)
    # The homework environment is the worker's own, in its cache, built there the first time (see kernel_env).
    settings = replace(settings, environment=ensure_built(locate(settings.environment.requirements, cache)))
    with tempfile.TemporaryDirectory(prefix="mnist-grader-nb-") as tmp_dir:
        nb_path = Path(tmp_dir) / "submission.ipynb"
        nb_path.write_bytes(notebook)
        started = time.monotonic()
        facts = grade_run(nb_path, dataset, settings)
    return facts_to_json(facts), time.monotonic() - started


@dataclass(frozen=True, slots=True)
class Result:
    """One submission's facts, how long its run took, and whether they came from the cache."""

    submission: Submission
    facts: Facts
    seconds: float
    cached: bool


def execute_all(
    submissions: list[Submission],
    dataset: Dataset,
    settings: RunSettings,
    cache: FactsCache,
    executor: Executor,
    guard: StageGuard,
    *,
    cached_only: bool = False,
    say: Callable[[str], None] = lambda _: None,
) -> Iterator[Result]:
    """Facts for every submission, as they come: from the cache where they hold all that `settings.request`
    asks for, else executed (and cached in place of what was there).

    `cached_only` (--rescore) makes a notebook with no cached facts an error, before anything runs. One whose
    cached facts lack what the rubric reads, or cannot be read back, runs again all the same: scoring it on
    missing data would give a wrong grade. `say` hears, once for the batch, which notebooks run again and why.
    """
    digest = installed_code_digest()
    todo: list[tuple[Submission, str]] = []
    stale: list[tuple[str, Shortfall]] = []
    damaged: list[str] = []
    for sub in submissions:
        key, found = _cached(sub, dataset, settings, cache, guard, digest)
        if isinstance(found, Facts):
            yield Result(sub, found, 0.0, cached=bool(key))  # no key: facts that say it was never read
        elif isinstance(found, Shortfall):
            stale.append((sub.student, found))
        elif key in cache.damaged:
            damaged.append(sub.student)
        if not isinstance(found, Facts):
            todo.append((sub, key))
    if cached_only and len(todo) > len(stale) + len(damaged):
        rerun = {student for student, _ in stale} | set(damaged)
        never = [sub.student for sub, _ in todo if sub.student not in rerun]
        raise GraderError(f"no cached facts for {', '.join(never[:5])}: run without --rescore to execute them")
    if stale:
        say(rerun_notice(stale, settings.request, cached_only))
    if damaged:
        say(f"cached facts that could not be read back: running those notebooks again ({', '.join(damaged[:5])})")
    if todo:
        for sub, key, facts, seconds in executor(todo):
            if key and facts.execution.status not in ("failed_to_start", "grader_error"):
                cache.put(key, facts)
            yield Result(sub, facts, seconds, False)


def _cached(
    sub: Submission, dataset: Dataset, settings: RunSettings, cache: FactsCache, guard: StageGuard, digest: str
) -> tuple[str, Facts | Shortfall | None]:
    """The submission's cache key, and what stands for it there: facts to use, what they lack, or nothing.

    A file that is not a regular one, or is over the rubric's size limit, gets facts that say so at once: it is
    never read for real, here or on a worker, as does a zip member over a per-member bound (never extracted).
    """
    if sub.refused:
        return "", not_run_facts("unreadable", f"Not graded: {sub.refused}.", settings)
    try:
        key = cache_key(read_regular_file(sub.path, settings.limits.notebook_bytes), dataset, settings, digest)
    except NotRegularFile as exc:
        return "", not_run_facts("unreadable", str(exc.strerror), settings)
    except FileTooLarge:
        return "", not_run_facts("unreadable", too_large(settings.limits.notebook_bytes), settings)
    except OSError:
        return "", None
    cached = guard.run(DECODE, sub.student, lambda f: failure_facts(f, settings), cache.get, key)
    if cached is None:
        return key, None
    return key, shortfall(cached, settings.request) or cached
