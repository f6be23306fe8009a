"""One notebook run: a `RunState` that each outcome changes through one method, and a short cell loop.

Student cells run one by one, each with its own time limit inside the notebook's; a cell that raises
does not stop the next, a cell over its limit is interrupted, and one that ignores the interrupt gets its
kernel killed. The probe (`grader.kernel.probe`) is loaded before the first cell and asked for facts after
each, so a kernel that dies keeps what it had collected. The trained model is then re-evaluated in a
fresh sandboxed process (`grader.execution.reevaluator`).
"""

from __future__ import annotations

import asyncio
import atexit
import json
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from queue import Empty

import nbformat
from msgspec import to_builtins
from msgspec.structs import replace
from nbclient.exceptions import DeadKernelError

from grader.dataset import Dataset
from grader.execution.client import BoundedClient
from grader.execution.kernel import HIDDEN_TIMEOUT_S, KernelUnresponsive, SandboxedKernelManager, alive, hidden
from grader.execution.notebook import NotebookUnreadable, read_notebook
from grader.execution.outputs import cell_facts, fitted, images, stdout
from grader.execution.reevaluator import Reevaluator, no_model
from grader.execution.settings import RunSettings, not_run_facts
from grader.facts import ExecutionFacts, Facts, KernelFacts, ProbeRequest
from grader.files import read_regular_file
from grader.kernel import run_files
from grader.sandbox.cgroup import ResourceGroup
from grader.sandbox.limits import Limits, memory_text
from grader.sandbox.placement import KERNEL_PACKAGE, Placement, kernel_environment, prepare_placement
from grader.sandbox.safe_tree import run_folder
from grader.sandbox.watchdog import Watchdog
from grader.statuses import CellStatus, RunStatus
from grader.strictjson import DecodeError, decode

_MAX_FACTS_BYTES = 8 << 20
_GRACE_S = 15.0
_PROBE = f"__import__('{KERNEL_PACKAGE}.probe').probe"
# Told the number of the code cell that starts and how many there are.
CellProgress = Callable[[int, int], None]


def grade_run(path: Path, dataset: Dataset, settings: RunSettings, on_cell: CellProgress | None = None) -> Facts:
    """Executes one notebook in a fresh sandbox and returns its facts; never raises for the notebook's faults.
    `on_cell` hears each code cell as it starts (its number and how many there are), for a status page."""
    started = time.monotonic()
    try:
        nb = read_notebook(path, settings.limits.notebook_bytes)
    except NotebookUnreadable as exc:
        return not_run_facts("unreadable", str(exc), settings)
    with run_folder() as tmp:
        placement = prepare_placement(tmp, dataset.path, settings.isolated, settings.environment.python)
        reevaluator = Reevaluator(placement, settings)
        try:
            execution, kernel = asyncio.run(_run(nb, placement, settings, reevaluator, on_cell))
            reevaluation = reevaluator.result(kernel.training_fit()) if kernel.model.saved else no_model(kernel)
        finally:
            reevaluator.close()
    execution = replace(execution, duration_s=round(time.monotonic() - started, 2))
    return fitted(Facts(execution, kernel, reevaluation, settings.dataset))


@dataclass
class RunState:
    """How a run went so far: each code cell's state, the run's status and message, and the limits it hit.

    Each outcome the cell loop meets is one method; `execution` turns the state into the run's facts.
    """

    code_cells: list[int]  # the code cells' positions in the notebook
    limits: Limits
    states: dict[int, CellStatus] = field(default_factory=dict)
    status: RunStatus = "completed"
    message: str = ""
    limits_hit: list[str] = field(default_factory=list)
    killed_for: str | None = None  # why the grader killed the kernel, when it did

    def __post_init__(self) -> None:
        self.states = {i: "not_run" for i in self.code_cells}

    @property
    def started(self) -> bool:
        return any(state != "not_run" for state in self.states.values())

    def out_of_time(self) -> None:
        """The notebook's time ran out before the next cell."""
        self.status = "notebook_timeout"
        self.limits_hit.append(f"notebook stopped after {self.limits.notebook_timeout_s:g} s")

    def cell_done(self, index: int, timed_out: bool) -> None:
        """The cell ended: by itself (an error is in its outputs), or interrupted at its time limit."""
        self.states[index] = "timeout" if timed_out else "ok"

    def cell_interrupted(self, number: int, remaining: float) -> None:
        """The interrupted cell stopped: the next one runs."""
        which = "notebook" if remaining < self.limits.cell_timeout_s else f"cell {number}"
        total = self.limits.notebook_timeout_s if which == "notebook" else self.limits.cell_timeout_s
        self.limits_hit.append(f"{which} stopped after {total:g} s (interrupted)")

    def cell_stuck(self, index: int, number: int, cell_limit: float, remaining: float) -> None:
        """The cell ran on past its interrupt: its kernel is killed and no later cell runs."""
        self.states[index] = "timeout"
        self.killed_for = "it ignored the interrupt at the cell's time limit"
        self.status = "notebook_timeout" if remaining < self.limits.cell_timeout_s else "kernel_died"
        self.limits_hit.append(
            f"cell {number} stopped after {cell_limit:g} s and its kernel was killed "
            "(it did not respond to an interrupt)"
        )

    def kernel_died(self, index: int | None = None) -> None:
        """The kernel is gone (while running the cell at `index`, when known)."""
        if index is not None:
            self.states[index] = "kernel_died"
        self.status = "kernel_died"

    def unresponsive(self, exc: KernelUnresponsive) -> None:
        """The kernel stopped answering the grader's own calls, and was killed."""
        if not self.started:
            self.failed_to_start(exc)
            return
        self.status, self.killed_for = "kernel_died", f"{exc}, so it was killed"
        self.limits_hit.append(f"kernel killed: {exc}")

    def broken(self, exc: Exception) -> None:
        """The kernel's channels failed: it never started, or it went away mid-run."""
        if not self.started:
            self.failed_to_start(exc)
        else:
            self.status = "kernel_died"

    def failed_to_start(self, exc: Exception) -> None:
        self.status, self.message = "failed_to_start", f"the kernel did not start: {exc}"[:300]

    def sandbox_stopped(self, watchdog_reason: str | None, out_of_memory: bool) -> None:
        """What the sandbox says after the run: a limit broken (the watchdog's) or memory run out."""
        if watchdog_reason:
            self.limits_hit.append(watchdog_reason)
            self.killed_for = watchdog_reason
            self.status = "kernel_died"
        elif out_of_memory:
            self.limits_hit.append(f"killed at {memory_text(self.limits.memory_mb)} of memory")
            self.status = "kernel_died"

    def execution(self, nb: nbformat.NotebookNode, truncated: set[int], malformed: set[int]) -> ExecutionFacts:
        """The run's facts, with the cells whose output was cut (`truncated`) or had malformed messages."""
        if truncated:
            self.limits_hit.append(
                f"output beyond {self.limits.output_kb} KB discarded (cell {self._numbers(truncated)})"
            )
        if malformed:
            self.limits_hit.append(f"malformed kernel messages ignored (cell {self._numbers(malformed)})")
        if self.status == "kernel_died" and not self.message:
            self.message = self._death_message()
        code = [nb.cells[i] for i in self.code_cells]
        return ExecutionFacts(
            status=self.status,
            message=self.message,
            cells=cell_facts(code, [self.states[i] for i in self.code_cells]),
            stdout=stdout(code),
            limits_hit=self.limits_hit,
            duration_s=0.0,
            images=images(code),
        )

    def _numbers(self, indices: set[int]) -> str:
        return ", ".join(str(self.code_cells.index(i) + 1) for i in sorted(indices) if i in self.code_cells)

    def _death_message(self) -> str:
        failed = ("kernel_died", "timeout")
        number = next((n for n, i in enumerate(self.code_cells, start=1) if self.states[i] in failed), None)
        where = f" while running cell {number}" if number else ""
        why = f" ({self.killed_for})" if self.killed_for else " (the process exited: os._exit, a crash or a signal)"
        return f"the kernel died{where}{why}; the cells after it did not run"


@dataclass
class CellLoop:
    """Runs a notebook's code cells on a started kernel, telling `state` what happened to each."""

    nb: nbformat.NotebookNode
    client: BoundedClient
    state: RunState
    kill: Callable[[], None]
    finished: Callable[[], None]  # called once the probe saved the model and the kernel is killed
    deadline: float
    on_cell: CellProgress | None = None
    after_cell: Callable[[], None] | None = None  # told after each cell the probe has written its facts for

    async def run(self) -> None:
        for number, index in enumerate(self.state.code_cells, start=1):
            if self.on_cell is not None:
                self.on_cell(number, len(self.state.code_cells))
            if not await self.cell(number, index):
                break
        else:
            await self.finish()
            return
        if self.state.status == "notebook_timeout" and await alive(self.client.km):  # type: ignore[arg-type]
            await self.finish()

    async def cell(self, number: int, index: int) -> bool:
        """Runs one cell between the probe's calls; False when no later cell can run."""
        limits = self.state.limits
        remaining = self.deadline - time.monotonic()
        if remaining <= 1:
            self.state.out_of_time()
            return False
        cell_limit = min(limits.cell_timeout_s, remaining)
        self.client.timeout = max(1, int(cell_limit))
        await self.probe(f"{_PROBE}.begin_cell({number})")
        try:
            # nbclient interrupts a cell at its limit and waits up to iopub_timeout for its last output;
            # this deadline is only a backstop.
            backstop = cell_limit + self.client.iopub_timeout + _GRACE_S
            await asyncio.wait_for(self.client.async_execute_cell(self.nb.cells[index], index), backstop)
            timed_out = index in self.client.timed_out
            self.state.cell_done(index, timed_out)
            if timed_out:  # an interrupted cell must have stopped: a kernel still busy with it gets killed
                await hidden(self.client, "", _GRACE_S)
        except (DeadKernelError, TimeoutError) as exc:
            # nbclient turns the cancellation at our deadline into DeadKernelError: only a kernel that is
            # really gone died by itself. KernelUnresponsive is a TimeoutError.
            if isinstance(exc, DeadKernelError) and not await alive(self.client.km):  # type: ignore[arg-type]
                self.state.kernel_died(index)
                return False
            self.state.cell_stuck(index, number, cell_limit, remaining)
            self.kill()
            return False
        if index in self.client.timed_out:
            self.state.cell_interrupted(number, remaining)
        if not await self.probe(f"{_PROBE}.end_cell({number})") and not await alive(self.client.km):  # type: ignore[arg-type]
            self.state.kernel_died()
            return False
        if self.after_cell is not None:
            self.after_cell()
        return True

    async def probe(self, code: str) -> bool:
        # The grader's calls between cells get a cell's time at most: a kernel that stops answering is killed.
        try:
            return await hidden(self.client, code, min(HIDDEN_TIMEOUT_S, self.state.limits.cell_timeout_s))
        except KernelUnresponsive:
            self.kill()
            raise

    async def finish(self) -> None:
        # The last facts and the saved model are written: the kernel has nothing left to do, so it is killed
        # now (not asked to shut down) and the re-evaluation starts while the run is torn down.
        await self.probe(f"{_PROBE}.finish()")
        self.kill()
        self.finished()


async def _run(
    nb: nbformat.NotebookNode,
    placement: Placement,
    settings: RunSettings,
    reevaluator: Reevaluator,
    on_cell: CellProgress | None = None,
) -> tuple[ExecutionFacts, KernelFacts]:
    """Runs the notebook's cells; the re-evaluation is launched once the notebook trains and told to start once
    the probe has saved the model and the kernel is killed."""
    limits = settings.limits
    group = ResourceGroup(limits)
    km = _kernel_manager(placement, settings, group)
    client = BoundedClient(
        nb,
        output_limit=limits.output_kb * 1024,
        km=km,
        allow_errors=True,
        interrupt_on_timeout=True,
        startup_timeout=int(limits.startup_timeout_s),
        iopub_timeout=10,
        record_timing=False,
        coalesce_streams=True,
    )
    state = RunState([i for i, c in enumerate(nb.cells) if c.cell_type == "code"], limits)

    def kill() -> None:
        proc = getattr(km.provisioner, "process", None)
        if proc is not None and proc.poll() is None:
            proc.kill()

    deadline = time.monotonic() + limits.notebook_timeout_s
    loop = CellLoop(nb, client, state, kill, reevaluator.start, deadline, on_cell, reevaluator.after_cell)
    # The kernel can write to the run folder and to its socket folder, both on the host's disk.
    watchdog = Watchdog(limits, (placement.run_dir, placement.socket_dir), kill)
    try:
        async with client.async_setup_kernel(stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL):
            watchdog.start(km.provisioner.process.pid)  # type: ignore[union-attr]
            if not await hidden(client, _install_probe(placement, settings.request), limits.startup_timeout_s):
                raise RuntimeError("the grader's probe could not be loaded in the kernel")
            await loop.run()
    except DeadKernelError:
        state.kernel_died()
    except KernelUnresponsive as exc:
        state.unresponsive(exc)
    except (RuntimeError, TimeoutError, Empty) as exc:
        state.broken(exc)
    finally:
        # nbclient leaves its at-exit cleanup registered when the kernel fails to start; it would print a
        # traceback when the grader exits.
        atexit.unregister(client._cleanup_kernel)
        # nbclient stops the client's channels only for a kernel manager it made itself: this one's would keep a
        # heartbeat thread and ZeroMQ's threads alive for as long as `grade --watch` or `grade serve` runs.
        if client.kc is not None:
            client.kc.stop_channels()
        watchdog.stop()
        out_of_memory = group.memory_killed()
        group.release()
    state.sandbox_stopped(watchdog.reason, out_of_memory)
    execution = state.execution(nb, client.truncated_cells, client.malformed_cells)
    return execution, read_kernel_facts(placement.run_dir, settings.request)


def _kernel_manager(placement: Placement, settings: RunSettings, group: ResourceGroup) -> SandboxedKernelManager:
    km = SandboxedKernelManager(
        placement=placement,
        limits=settings.limits,
        env=kernel_environment(settings.threads, placement),
        group=group,
        transport="ipc",
        connection_file=str(placement.channels_dir / "kernel.json"),
    )
    if km.kernel_spec is not None:
        # The kernel runs behind bwrap, so a signal would hit bwrap: interrupt over the control channel.
        km.kernel_spec.interrupt_mode = "message"
    return km


def _install_probe(placement: Placement, request: ProbeRequest) -> str:
    """The grader's code that loads the probe in the kernel, before the first cell."""
    lib = json.dumps(placement.lib_path)
    wanted = json.dumps(json.dumps(to_builtins(request)))  # JSON text, as a Python string literal
    return (
        f"import sys as _s; _s.path.insert(0, {lib}); import {KERNEL_PACKAGE}.probe as _p; "
        f"_p.install({wanted}, {json.dumps(placement.data_path)}, {json.dumps(placement.run_path)}); "
        "del _s, _p"
    )


def read_kernel_facts(run_dir: Path, request: ProbeRequest) -> KernelFacts:
    """What the probe wrote, or empty facts for the request when it wrote nothing readable."""
    # The kernel controls this file: read only if it is a regular file of bounded size, without following
    # a link or waiting on a FIFO.
    try:
        kernel = decode(
            read_regular_file(run_dir / run_files.FACTS, _MAX_FACTS_BYTES), KernelFacts, max_bytes=_MAX_FACTS_BYTES
        )
    except (OSError, DecodeError):
        return KernelFacts.empty(request)
    # What was asked is the grader's to say, whatever the file claims.
    return replace(kernel, request=request)
