"""Where one notebook's time goes in `grade`, next to plain nbclient: kernel start, probe, cells, re-evaluation.

    .venv/bin/python benchmarks/profile_grade.py [--dataset NPZ] [--small] [--notebook NB] [--no-sandbox-too]

Runs `grader.execution.run.grade_run` in this process with timers wrapped around its steps (nothing in the
grader is changed) and the same notebook under plain nbclient with the same timers, and prints both, each
after waiting for the machine to be quiet and with the share of it that other processes used meanwhile.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

# This checkout's grader, not whichever one the venv has installed, and the sibling benchmark module.
sys.path[:0] = [str(Path(__file__).resolve().parents[1]), str(Path(__file__).resolve().parent)]

import bench  # noqa: E402 - the sibling module, for the dataset and the injected cell
from nbclient import NotebookClient  # noqa: E402

from grader.dataset import provision_dataset  # noqa: E402
from grader.execution import run  # noqa: E402
from grader.execution.run import grade_run  # noqa: E402
from grader.execution.settings import RunSettings, dataset_facts  # noqa: E402
from grader.facts_cache import default_cache_dir  # noqa: E402
from grader.kernel_env import KernelEnvironment, ensure_built, locate  # noqa: E402
from grader.rubric.load import load_rubric  # noqa: E402

Timings = dict[str, list[float]]


def hidden_label(args: tuple[Any, ...], _kw: dict[str, Any]) -> str:
    code = str(args[1])
    for word in ("begin_cell", "end_cell", "finish"):
        if f".{word}(" in code:
            return f"probe {word} (hidden)"
    return "probe install (hidden)" if ".install(" in code else "other hidden"


def cell_label(args: tuple[Any, ...], _kw: dict[str, Any]) -> str:
    cell = args[1]
    first = cell.source.strip().splitlines()[0][:40] if cell.source.strip() else ""
    return f"cell: {first}" if cell.cell_type == "code" else "markdown cells"


def instrument(timings: Timings) -> Callable[[], None]:
    """Wraps the steps of a run with timers; returns a function that undoes it."""
    undo: list[Callable[[], None]] = []

    def wrap(owner: Any, name: str, label: str | Callable[..., str], is_async: bool) -> None:
        original = getattr(owner, name, None)
        if original is None:  # the grader changed shape: time what is there
            return

        def record(args: tuple[Any, ...], kw: dict[str, Any], started: float) -> None:
            key = label(args, kw) if callable(label) else label
            timings[key].append(time.perf_counter() - started)

        if is_async:

            async def async_wrapper(*args: Any, **kw: Any) -> Any:
                started = time.perf_counter()
                try:
                    return await original(*args, **kw)
                finally:
                    record(args, kw, started)

            setattr(owner, name, async_wrapper)
        else:

            def wrapper(*args: Any, **kw: Any) -> Any:
                started = time.perf_counter()
                try:
                    return original(*args, **kw)
                finally:
                    record(args, kw, started)

            setattr(owner, name, wrapper)
        undo.append(lambda: setattr(owner, name, original))

    wrap(NotebookClient, "async_start_new_kernel", "kernel process start", True)
    wrap(NotebookClient, "async_start_new_kernel_client", "kernel ready (client connects)", True)
    wrap(NotebookClient, "async_execute_cell", cell_label, True)
    wrap(NotebookClient, "_async_cleanup_kernel", "kernel shutdown", True)
    # The names as `grader.execution.run` imported them: that module's calls go through these.
    wrap(run, "hidden", hidden_label, True)
    # Started beside the kernel; only the wait for its answer is serial.
    wrap(run.Reevaluator, "__init__", "re-evaluation process start", False)
    wrap(run.Reevaluator, "result", "re-evaluation (wait for result)", False)
    wrap(run.Reevaluator, "close", "re-evaluation close", False)
    wrap(run, "read_notebook", "read notebook (bounded)", False)
    wrap(run, "prepare_placement", "sandbox folders", False)
    wrap(run, "read_kernel_facts", "read kernel facts", False)

    def restore() -> None:
        for step in reversed(undo):
            step()

    return restore


@dataclass
class Profile:
    title: str
    total: float = 0.0
    others: float = 0.0  # share of the machine that other processes used meanwhile
    timings: Timings = field(default_factory=lambda: defaultdict(list))

    def show(self) -> None:
        print(f"\n{self.title}: {self.total:.2f} s (other processes: {self.others:.0%} of the machine)")
        accounted = 0.0
        for key, values in self.timings.items():
            accounted += sum(values)
            per = f"  ({len(values)} calls, max {max(values):.2f} s)" if len(values) > 1 else ""
            print(f"  {key:<50} {sum(values):8.2f} s{per}")
        print(f"  {'unaccounted':<50} {self.total - accounted:8.2f} s")


def profiled(title: str, run: Callable[[], object], max_wait_s: float) -> Profile:
    """`run()` timed step by step, after waiting for the machine to be quiet."""
    profile = Profile(title)
    if max_wait_s > 0:
        bench.wait_until_quiet(max_wait_s)
    undo = instrument(profile.timings)
    try:
        _, profile.total, profile.others = bench.foreign_share(run)
    finally:
        undo()
    return profile


def homework_environment() -> KernelEnvironment:
    """The environment student kernels run in (rubric.yaml's), from the grader's cache as `grade` finds it."""
    requirements = load_rubric(bench.ROOT / "rubric.yaml").environment.requirements
    return ensure_built(locate(requirements, default_cache_dir()))


def grade_once(notebook: Path, data: Path, isolated: bool) -> None:
    with tempfile.TemporaryDirectory() as cache:
        rubric = load_rubric(bench.ROOT / "rubric.yaml")
        dataset = provision_dataset(data, Path(cache), loader=rubric.assignment.dataset.loader)
        settings = RunSettings(
            limits=rubric.limits,
            isolated=isolated,
            threads=len(os.sched_getaffinity(0)),
            request=rubric.probe_request(),
            environment=homework_environment(),
            dataset=dataset_facts(dataset),  # once per batch in `grade`
        )
        facts = grade_run(notebook, dataset, settings)
    if facts.execution.status != "completed":
        print(f"warning: {facts.execution.status}: {facts.execution.message}")


def nbclient_once(notebook: Path, data: Path) -> None:
    with tempfile.TemporaryDirectory() as folder:
        bench.run_nbclient(notebook, data, Path(folder))


def import_time(sandboxed: bool) -> float:
    """Seconds for a fresh Python to import keras (the floor of any process that loads a model)."""
    from grader.sandbox.bwrap import wrap_command
    from grader.sandbox.limits import Limits
    from grader.sandbox.placement import kernel_environment, prepare_placement

    with tempfile.TemporaryDirectory() as tmp:
        placement = prepare_placement(Path(tmp), bench.REFERENCE, sandboxed, homework_environment().python)
        argv = [placement.python_path, "-c", "import keras"]
        cmd = wrap_command(argv, placement, Limits(), kernel_environment(2, placement)) if sandboxed else argv
        started = time.perf_counter()
        subprocess.run(cmd, check=True, capture_output=True)
        return time.perf_counter() - started


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--dataset", type=Path)
    p.add_argument("--small", action="store_true")
    p.add_argument("--notebook", type=Path, default=bench.REFERENCE)
    p.add_argument("--no-sandbox-too", action="store_true", help="also profile grade without bubblewrap")
    p.add_argument("--max-wait", type=float, default=900, help="seconds to wait for a quiet machine before a run")
    args = p.parse_args()
    with tempfile.TemporaryDirectory() as work:
        data = bench.dataset_for(argparse.Namespace(dataset=args.dataset, small=args.small), Path(work))
        print(f"dataset: {bench.describe_dataset(data)}")
        print(f"python -c 'import keras': {import_time(False):.2f} s plain, {import_time(True):.2f} s in bwrap")
        runs = [
            ("plain nbclient", partial(nbclient_once, args.notebook, data)),
            ("grade_run, sandboxed", partial(grade_once, args.notebook, data, True)),
        ]
        if args.no_sandbox_too:
            runs.append(("grade_run, --no-sandbox", partial(grade_once, args.notebook, data, False)))
        for title, run in runs:
            profiled(title, run, args.max_wait).show()
    return 0


if __name__ == "__main__":
    sys.exit(main())
