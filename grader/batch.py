"""Schedules executions (local threads or a Dask cluster), caches their facts, and calibrates on the reference.

Facts are cached by everything that can change them: the notebook's bytes, the dataset, the grader's
version, the code that runs in or around the kernel, and the limits. Scoring is not part of the key, so
a rubric edit re-scores every student from the cache without starting a kernel.
"""

from __future__ import annotations

import hashlib
import os
import sys
import time
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor, as_completed
from dataclasses import asdict, dataclass, replace
from pathlib import Path

from grader import __version__
from grader.checks import Context
from grader.dataset import Dataset
from grader.discover import Submission
from grader.errors import GraderError
from grader.execute import RunSettings, dataset_facts, grade_run, not_run_facts
from grader.facts import Facts, facts_from_json, facts_to_json, load_facts, save_facts
from grader.files import NotRegularFile, read_regular_file
from grader.isolation import DECODE, EXECUTE, StageFailure, StageGuard
from grader.kernel_env import ensure_built, locate
from grader.rubric import Rubric
from grader.score import StudentGrade, score_facts

_PACKAGE = Path(__file__).parent
# Files whose code decides what facts a run produces; editing any of them invalidates the cache.
_FACT_SOURCES = (
    "execute.py",
    "files.py",
    "sandbox.py",
    "facts.py",
    "strictjson.py",
    "kernel/probe.py",
    "kernel/reevaluate.py",
)


@dataclass(frozen=True, slots=True)
class Calibration:
    reference_accuracy: float
    threshold: float
    reference_facts: Facts

    def context(self) -> Context:
        return Context(accuracy_threshold=self.threshold, reference_accuracy=self.reference_accuracy)


def fact_code_digest() -> str:
    digest = hashlib.sha256(__version__.encode())
    for name in _FACT_SOURCES:
        digest.update((_PACKAGE / name).read_bytes())
    return digest.hexdigest()


def cache_key(notebook: bytes, dataset: Dataset, settings: RunSettings, code_digest: str) -> str:
    digest = hashlib.sha256()
    for part in (
        hashlib.sha256(notebook).hexdigest(),
        dataset.sha256,
        code_digest,
        repr(asdict(settings.limits)),
        str(settings.isolated),
        settings.environment.digest,
    ):
        digest.update(part.encode() + b"\0")
    return digest.hexdigest()


class FactsCache:
    """Facts on disk, one JSON file per cache key."""

    def __init__(self, root: Path) -> None:
        self.root = root / "facts"
        self.root.mkdir(parents=True, exist_ok=True)

    def get(self, key: str) -> Facts | None:
        path = self.root / f"{key}.json"
        try:
            return load_facts(path)
        except FileNotFoundError:
            return None
        except (OSError, ValueError):
            path.unlink(missing_ok=True)  # a damaged entry is recomputed
            return None

    def put(self, key: str, facts: Facts) -> None:
        save_facts(facts, self.root / f"{key}.json")


@dataclass
class Progress:
    """Live batch progress on a terminal; one line per finished student; silent when `quiet`."""

    total: int
    quiet: bool = False
    verbose: bool = False
    show_cached: bool = True  # a line for a student whose facts came from the cache too
    done: int = 0
    running: int = 0
    failures: int = 0
    started: float = 0.0

    def __post_init__(self) -> None:
        self.started = time.monotonic()
        self.live = sys.stderr.isatty() and not self.quiet

    def start_one(self) -> None:
        self.running += 1
        self._draw()

    def finish_one(self, grade: StudentGrade, seconds: float, cached: bool) -> None:
        self.running = max(0, self.running - 1)
        self.done += 1
        if grade.status != "graded" or grade.facts.execution.status != "completed":
            self.failures += 1
        if not self.quiet and (self.show_cached or not cached):
            self._clear()
            how = "cached" if cached else f"{seconds:.1f} s"
            timing = f"  [{how}]" if self.verbose else ""
            flag = "  INTEGRITY" if grade.integrity_flags else ""
            state = "" if grade.facts.execution.status == "completed" else f"  ({grade.facts.execution.status})"
            print(f"{grade.student:<32} {grade.total:6.1f} / {grade.max_total:g}{state}{flag}{timing}", file=sys.stderr)
        self._draw()

    def _clear(self) -> None:
        if self.live:
            print("\r\033[K", end="", file=sys.stderr)

    def _draw(self) -> None:
        if not self.live:
            return
        width = 24
        filled = int(width * self.done / max(1, self.total))
        elapsed = time.monotonic() - self.started
        eta = (elapsed / self.done * (self.total - self.done)) if self.done else 0
        eta_text = f"ETA {int(eta) // 60}m{int(eta) % 60:02d}s" if self.done else "ETA --"
        bar = "#" * filled + "-" * (width - filled)
        print(
            f"\r\033[K[{bar}] {self.done}/{self.total} done, {self.running} running, "
            f"{self.failures} failed, {eta_text}",
            end="",
            file=sys.stderr,
            flush=True,
        )

    def close(self) -> None:
        self._clear()


Executor = Callable[[list[tuple[Submission, str]]], Iterator[tuple[Submission, str, Facts, float]]]


def failure_facts(failure: StageFailure, dataset: Dataset) -> Facts:
    """What stands in for a student's facts when the grader itself failed to produce or read them."""
    return not_run_facts("grader_error", failure.message, dataset_facts(dataset))


def local_executor(
    dataset: Dataset, settings: RunSettings, jobs: int, on_start: Callable[[], None], guard: StageGuard
) -> Executor:
    """Runs notebooks on this machine, `jobs` at a time."""

    def run(todo: list[tuple[Submission, str]]) -> Iterator[tuple[Submission, str, Facts, float]]:
        def one(sub: Submission) -> tuple[Facts, float]:
            on_start()
            started = time.monotonic()
            return grade_run(sub.path, dataset, settings), time.monotonic() - started

        with ThreadPoolExecutor(max_workers=max(1, jobs)) as pool:
            futures: dict[Future[tuple[Facts, float]], tuple[Submission, str]] = {
                pool.submit(one, sub): (sub, key) for sub, key in todo
            }
            for future in as_completed(futures):
                sub, key = futures[future]
                facts, seconds = guard.run(
                    EXECUTE, sub.student, lambda failure: (failure_facts(failure, dataset), 0.0), future.result
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
                    read_regular_file(sub.path),
                    data,
                    dataset.sha256,
                    dataset.source,
                    dataset.standin,
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
                    yield sub, key, failure_facts(outcome, dataset), 0.0
                    continue
                text, seconds = outcome
                facts = guard.run(DECODE, sub.student, lambda f: failure_facts(f, dataset), facts_from_json, text)
                yield sub, key, facts, seconds

    return run


def run_on_worker(
    notebook: bytes, dataset_bytes: bytes, sha256: str, source: str, standin: bool, settings: RunSettings
) -> tuple[str, float]:
    """Executed on a Dask worker: materialises the inputs locally, runs the sandbox, returns facts as JSON."""
    import tempfile

    from grader.dataset import load_arrays

    cache = Path(os.environ.get("MNIST_GRADER_CACHE", Path(tempfile.gettempdir()) / "mnist-grader-worker"))
    cache.mkdir(parents=True, exist_ok=True)
    data_path = cache / f"dataset-{sha256[:16]}.npz"
    if not data_path.exists() or hashlib.sha256(data_path.read_bytes()).hexdigest() != sha256:
        tmp = data_path.with_suffix(f".{os.getpid()}.tmp")
        tmp.write_bytes(dataset_bytes)
        tmp.replace(data_path)
    (x_train, _), (x_test, _) = load_arrays(data_path)
    dataset = Dataset(data_path, sha256, source, standin, len(x_train), len(x_test))
    # The homework environment is the worker's own, in its cache, built there the first time (see kernel_env).
    settings = replace(settings, environment=ensure_built(locate(settings.environment.requirements, cache)))
    with tempfile.TemporaryDirectory(prefix="mnist-grader-nb-") as tmp_dir:
        nb_path = Path(tmp_dir) / "submission.ipynb"
        nb_path.write_bytes(notebook)
        started = time.monotonic()
        facts = grade_run(nb_path, dataset, settings)
    return facts_to_json(facts), time.monotonic() - started


def execute_all(
    submissions: list[Submission],
    dataset: Dataset,
    settings: RunSettings,
    cache: FactsCache,
    executor: Executor | None,
    on_result: Callable[[Submission, Facts, float, bool], None],
    guard: StageGuard,
) -> dict[str, Facts]:
    """Facts for every submission: from the cache where possible, else executed (and cached)."""
    digest = fact_code_digest()
    results: dict[str, Facts] = {}
    todo = []
    for sub in submissions:
        try:
            key = cache_key(read_regular_file(sub.path), dataset, settings, digest)
        except NotRegularFile as exc:
            # A link or a pipe is never opened for real, here or on a worker: its report says what it is.
            results[sub.student] = not_run_facts("unreadable", str(exc.strerror), dataset_facts(dataset))
            on_result(sub, results[sub.student], 0.0, False)
            continue
        except OSError:
            key = ""
        cached = guard.run(DECODE, sub.student, lambda f: failure_facts(f, dataset), cache.get, key) if key else None
        if cached is not None:
            results[sub.student] = cached
            on_result(sub, cached, 0.0, True)
        else:
            todo.append((sub, key))
    if todo:
        if executor is None:
            missing = ", ".join(sub.student for sub, _ in todo[:5])
            raise GraderError(f"no cached facts for {missing}: run without --rescore to execute them")
        for sub, key, facts, seconds in executor(todo):
            if key and facts.execution.status not in ("failed_to_start", "grader_error"):
                cache.put(key, facts)
            results[sub.student] = facts
            on_result(sub, facts, seconds, False)
    return results


def calibrate(reference: Facts, rubric: Rubric) -> Calibration:
    """Derives the accuracy threshold from the reference run, and insists the reference scores full marks."""
    accuracy = reference.reevaluation.accuracy
    if not reference.reevaluation.ok or accuracy is None:
        raise GraderError(
            f"the reference notebook {rubric.reference} produced no model to calibrate on: "
            f"{reference.execution.message or reference.reevaluation.message}"
        )
    calibration = Calibration(accuracy, accuracy - rubric.accuracy_margin, reference)
    grade = score_facts("reference", reference, rubric, calibration.context())
    if grade.total < rubric.max_total:
        failed = [f"{s.id}.{c.id}: {c.message}" for s in grade.sections for c in s.checks if not c.passed]
        raise GraderError(
            f"the reference notebook {rubric.reference} scores {grade.total:g}/{rubric.max_total:g}, not full marks; "
            "fix the rubric or the reference first. Failed: " + " | ".join(failed[:3])
        )
    return calibration


def grade_with_notes(sub: Submission, facts: Facts, rubric: Rubric, calibration: Calibration) -> StudentGrade:
    """The submission's grade, with where it came from and its discovery note."""
    grade = replace(score_facts(sub.student, facts, rubric, calibration.context()), origin=sub.origin)
    if sub.note:
        grade = replace(grade, message=(sub.note + " " + grade.message).strip())
    return grade


def default_cache_dir() -> Path:
    env = os.environ.get("MNIST_GRADER_CACHE")
    if env:
        return Path(env)
    base = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache"))
    return base / "mnist-grader"
