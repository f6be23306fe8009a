"""Runs one notebook with nbclient inside the sandbox and returns what it left behind as facts.

Student cells run one by one, each with its own time limit inside the notebook's; a cell that raises
does not stop the next, a cell over its limit is interrupted, and one that ignores the interrupt gets its
kernel killed. The probe (`grader.kernel.probe`) is loaded before the first cell and asked for facts after
each, so a kernel that dies keeps what it had collected. The trained model is then re-evaluated in a
fresh sandboxed process.
"""

from __future__ import annotations

import asyncio
import atexit
import base64
import contextlib
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from queue import Empty
from typing import Any, TypeGuard

import nbformat
import zmq.asyncio
from jupyter_client.manager import AsyncKernelManager
from msgspec import to_builtins
from msgspec.structs import replace
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionComplete, DeadKernelError
from traitlets import Type, default

from grader.dataset import Dataset
from grader.facts import (
    FIRST_LABELS,
    CellFacts,
    DatasetFacts,
    ExecutionFacts,
    Facts,
    FitCall,
    KernelFacts,
    ProbeRequest,
    Reevaluation,
    ValidationRequest,
)
from grader.files import NotRegularFile, read_regular_file
from grader.kernel_channels import MESSAGE_OVERHEAD, BoundedKernelClient, bounded_context
from grader.kernel_env import KernelEnvironment
from grader.kernel_relay import CHANNELS, RelayConfig
from grader.sandbox.bwrap import wrap_command
from grader.sandbox.cgroup import ResourceGroup
from grader.sandbox.limits import Limits, memory_text
from grader.sandbox.placement import KERNEL_PACKAGE, Placement, hand_to_sandbox, kernel_environment, prepare_placement
from grader.sandbox.safe_tree import run_folder
from grader.sandbox.watchdog import Watchdog
from grader.strictjson import DecodeError, decode

_ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")
_MAX_FACTS_BYTES = 8 << 20
_MAX_REEVALUATION_BYTES = 1 << 20
_MAX_STDOUT = 64 << 10
_MAX_CELL_STDOUT = 8 << 10
_CELLS_OF_OUTPUT = 16
_MAX_SOURCE = 20_000
_HIDDEN_TIMEOUT_S = 120.0
_GRACE_S = 15.0
_REEVALUATE_TIMEOUT_S = 180.0


class KernelUnresponsive(TimeoutError):
    """The kernel did not answer one of the grader's own calls in time (its code may have hijacked them)."""


class NotebookUnreadable(Exception):
    """The file cannot be run as a Python notebook at all; the message says why."""


def strip_ansi(text: str) -> str:
    return _ANSI.sub("", text)


def read_notebook(path: Path) -> nbformat.NotebookNode:
    """The notebook as nbformat v4, or NotebookUnreadable with a message a student can act on."""
    try:
        raw = read_regular_file(path)
    except NotRegularFile as exc:
        raise NotebookUnreadable(str(exc.strerror)) from None
    except OSError as exc:
        raise NotebookUnreadable(f"the file cannot be read: {exc.strerror}") from None
    if not raw.strip():
        raise NotebookUnreadable("the file is empty (0 bytes): was the notebook saved before submitting?")
    try:
        data = json.loads(raw.decode("utf-8-sig"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise NotebookUnreadable(f"the file is not a Jupyter notebook (not valid JSON: {exc})") from None
    except RecursionError:
        raise NotebookUnreadable("the file is not a Jupyter notebook (its JSON is nested too deeply)") from None
    if not isinstance(data, dict) or "cells" not in data and "worksheets" not in data:
        raise NotebookUnreadable("the file is JSON but not a Jupyter notebook (it has no cells)")
    try:
        nb = nbformat.reads(json.dumps(data), as_version=4)
        nbformat.validate(nb)
    except Exception as exc:  # nbformat raises many types, some without a message (a bare AssertionError)
        reason = (str(exc).splitlines() or [type(exc).__name__])[0]
        raise NotebookUnreadable(f"the notebook is malformed: {reason[:300]}") from None
    language = nb.metadata.get("kernelspec", {}).get("language") or nb.metadata.get("language_info", {}).get(
        "name", "python"
    )
    if str(language).lower() not in ("python", "python3", "ipython"):
        raise NotebookUnreadable(f"the notebook's kernel is {language!r}; this assignment must be written in Python")
    if not any(cell.cell_type == "code" and cell.source.strip() for cell in nb.cells):
        raise NotebookUnreadable("the notebook has no code to run: was the right file submitted?")
    return nb


class SandboxedKernelManager(AsyncKernelManager):
    """A kernel manager whose kernel runs inside the sandbox, behind a relay, talking over ipc sockets.

    Its `connection_file` and the sockets it and its clients connect to are the relay's, in a folder of the run
    that only the grader reaches; the kernel gets a connection file of its own in the sandbox's socket folder,
    with the same ports and key. The process jupyter_client starts, waits for and kills is the relay
    (`grader.kernel_relay`), in the notebook's cgroup, and the sandboxed kernel is its child. The grader's sockets
    accept no message part over `max_message_bytes` (`grader.kernel_channels`).
    """

    client_factory = Type(BoundedKernelClient)

    def __init__(self, *, placement: Placement, limits: Limits, env: dict[str, str], group: ResourceGroup, **kw: Any):
        super().__init__(**kw)
        self.placement = placement
        self.limits = limits
        self.sandbox_env = env
        self.group = group

    @property
    def max_message_bytes(self) -> int:
        # A message bigger than one cell's output cap could never be kept, whatever its type.
        return self.limits.output_kb * 1024 + MESSAGE_OVERHEAD

    @property
    def kernel_connection_file(self) -> Path:
        return self.placement.socket_dir / "kernel.json"

    @property
    def drop_counts(self) -> Path:
        return self.placement.channels_dir / "dropped"

    @default("context")
    def _bounded_context(self) -> zmq.asyncio.Context:
        self._created_context = True  # cleanup_resources destroys it
        return bounded_context(self.max_message_bytes)

    def client(self, **kwargs: Any) -> BoundedKernelClient:  # type: ignore[override]
        bounds = {"max_message_bytes": self.max_message_bytes, "drop_counts": str(self.drop_counts)}
        return super().client(**bounds, **kwargs)  # type: ignore[return-value]

    def format_kernel_cmd(self, extra_arguments: list[str] | None = None) -> list[str]:
        argv = [self.placement.python_path, "-m", "ipykernel_launcher", "-f", str(self.kernel_connection_file)]
        relay = [sys.executable, "-m", "grader.kernel_relay", self._relay_config().to_json(), "--"]
        return self.group.enter_prefix() + relay + wrap_command(argv, self.placement, self.limits, self.sandbox_env)

    def write_connection_file(self, **kwargs: Any) -> None:
        super().write_connection_file(**kwargs)
        info = json.loads(Path(self.connection_file).read_text(encoding="utf-8"))
        self.kernel_connection_file.write_text(json.dumps({**info, "ip": self._kernel_ip}), encoding="utf-8")
        hand_to_sandbox(self.kernel_connection_file, self.placement)

    @property
    def _kernel_ip(self) -> str:
        # With the ipc transport, jupyter_client's "ip" is the sockets' path prefix: the sandbox's socket folder.
        return str(self.placement.socket_dir / "kernel-ipc")

    def _relay_config(self) -> RelayConfig:
        def paths(prefix: str) -> dict[str, str]:
            return {channel: f"{prefix}-{getattr(self, f'{channel}_port')}" for channel in CHANNELS}

        return RelayConfig(
            grader_side={channel: f"ipc://{path}" for channel, path in paths(self.ip).items()},
            kernel_side=paths(self._kernel_ip),
            counts_path=str(self.drop_counts),
            max_bytes=self.max_message_bytes,
            grader_pid=os.getpid(),
        )


# Output message types: each one's content is checked, reduced to what the grader reads, and counted against the cap.
_OUTPUT_TYPES = frozenset({"stream", "display_data", "update_display_data", "execute_result", "error", "clear_output"})
# What the grader reads of a display: its text and its PNG (the student's figures).
_KEPT_MIMES = ("text/plain", "image/png")
# An output's own objects in the grader's memory, charged beside its text so that many tiny outputs cost what
# they take (measured with nbformat 5.11: a stream output about 0.55 KB, an empty display about 1.4 KB).
_STREAM_COST = 640
_OUTPUT_COST = 1536
_LINE_COST = 64  # each traceback line, a string object of its own
# The error in the stand-in reply nbclient returns, without waiting for the kernel's, for a cell it interrupted
# at its time limit (`error_on_timeout`).
_TIMEOUT_REPLY = {"ename": "CellTimeout", "evalue": "the cell ran past its time limit", "traceback": []}


class BoundedClient(NotebookClient):
    """nbclient that keeps a bounded amount of output, ignores what it cannot use, and records timed-out cells.

    Every output message (streams, displays with or without a display id, display updates, results, errors,
    clears) counts against a cap per cell, so a flood in one cell (200 epochs of progress bars) cannot hide
    what later cells print; the whole notebook keeps at most `_CELLS_OF_OUTPUT` cells' worth. No message the
    kernel sends can raise out of a cell's execution: comm messages are ignored (no widget front end is
    mimicked and no widget state is kept), as are unknown types, and an output whose content does not have
    the expected shape is dropped and counted.
    """

    def __init__(self, nb: nbformat.NotebookNode, output_limit: int, **kw: Any):
        super().__init__(nb, store_widget_state=False, error_on_timeout=_TIMEOUT_REPLY, **kw)
        self.on_cell_executed = self._cell_executed
        self.output_limit = output_limit
        self.output_used = 0
        self.cell_output: dict[int, int] = {}
        self.truncated_cells: set[int] = set()
        self.timed_out: set[int] = set()
        self.malformed_cells: set[int] = set()

    def process_message(self, msg: dict[str, Any], cell: Any, cell_index: int) -> Any:
        msg_type, content = msg["msg_type"], msg["content"]  # their types are checked by BoundedChannel
        if msg_type == "status":
            if content.get("execution_state") == "idle":
                raise CellExecutionComplete()
            return None
        if msg_type not in _OUTPUT_TYPES:
            return None
        kept = _kept_content(msg_type, content)
        if kept is None:
            self.malformed_cells.add(cell_index)
            return None
        size = len(json.dumps(kept)) + (_STREAM_COST if msg_type == "stream" else _OUTPUT_COST)
        size += _LINE_COST * len(kept.get("traceback", ()))
        if not self._within_cap(cell.outputs, size, cell_index):
            return None
        try:
            return super().process_message({**msg, "content": kept}, cell, cell_index)
        except Exception:  # whatever nbclient or nbformat make of it, the output is dropped and the cell goes on
            self.malformed_cells.add(cell_index)
            return None

    def _within_cap(self, outs: list[Any], size: int, cell_index: int) -> bool:
        used = self.cell_output.get(cell_index, 0)
        if used + size > self.output_limit or self.output_used + size > self.output_limit * _CELLS_OF_OUTPUT:
            if cell_index not in self.truncated_cells:
                self.truncated_cells.add(cell_index)
                notice = f"\n[grader: output beyond {self.output_limit // 1024} KB was discarded]\n"
                outs.append(nbformat.v4.new_output("stream", name="stderr", text=notice))
            return False
        self.cell_output[cell_index] = used + size
        self.output_used += size
        return True

    def _cell_executed(self, cell: Any, cell_index: int, execute_reply: dict[str, Any]) -> None:
        # nbclient's stand-in reply for a cell it interrupted at its time limit is the only one with no header.
        if "header" not in execute_reply:
            self.timed_out.add(cell_index)
        if isinstance(self.kc, BoundedKernelClient):
            oversized, malformed = self.kc.dropped()
            if oversized:  # over output_kb + MESSAGE_OVERHEAD: beyond what the cell could keep anyway
                self.truncated_cells.add(cell_index)
            if malformed:
                self.malformed_cells.add(cell_index)


def _kept_content(msg_type: str, content: dict[str, Any]) -> dict[str, Any] | None:
    """The part of an output message's content that the grader keeps, with the types nbclient and the grader
    read without checking; None when those parts have the wrong types."""
    transient = content.get("transient") or {}
    display_id = transient.get("display_id") if isinstance(transient, dict) else ()
    if display_id is not None and not isinstance(display_id, str):
        return None
    if msg_type == "stream":
        name, text = content.get("name"), content.get("text")
        return {"name": name, "text": text} if isinstance(name, str) and isinstance(text, str) else None
    if msg_type == "error":
        fields = {key: content.get(key) for key in ("ename", "evalue", "traceback")}
        lines = fields["traceback"]
        if not (isinstance(fields["ename"], str) and isinstance(fields["evalue"], str) and _text_lines(lines)):
            return None
        return fields
    if msg_type == "clear_output":
        return {"wait": bool(content.get("wait"))}
    data = content.get("data", {})
    if not isinstance(data, dict):
        return None
    kept: dict[str, Any] = {"data": {}, "metadata": {}}
    for mime in _KEPT_MIMES:
        value = data.get(mime)
        if _text_lines(value):  # nbformat's multi-line form
            value = "".join(value)
        if isinstance(value, str):
            kept["data"][mime] = value
        elif value is not None:
            return None
    if display_id is not None:
        kept["transient"] = {"display_id": display_id}
    if msg_type == "execute_result":
        count = content.get("execution_count")
        if count is not None and not isinstance(count, int):
            return None
        kept["execution_count"] = count
    return kept


def _text_lines(value: Any) -> TypeGuard[list[str]]:
    return isinstance(value, list) and all(isinstance(line, str) for line in value)


@dataclass(frozen=True, slots=True)
class RunSettings:
    limits: Limits
    isolated: bool
    threads: int
    # What the probe records (the rubric's `probe_request()`). Not part of the facts cache key: the facts
    # record it, and a run whose request lacks what the rubric asks for is executed again.
    request: ProbeRequest
    environment: KernelEnvironment  # the Python the kernel and the re-evaluation run on


def dataset_facts(dataset: Dataset) -> DatasetFacts:
    import numpy as np

    with np.load(dataset.path) as data:
        y_train = data["y_train"]
        image_shape = data["x_test"].shape[1:]  # the smaller split to decompress; both have the same images
    return DatasetFacts(
        n_train=dataset.n_train,
        n_test=dataset.n_test,
        image_shape=[int(n) for n in image_shape],
        classes=len(np.unique(y_train)),
        standin=dataset.standin,
        description=dataset.describe(),
        sha256=dataset.sha256,
        first_labels=[int(v) for v in y_train[:FIRST_LABELS]],
    )


def not_run_facts(status: str, message: str, data: DatasetFacts, request: ProbeRequest) -> Facts:
    """The facts of a notebook that was never run (`unreadable`, or `grader_error`), saying why."""
    execution = ExecutionFacts(status=status, message=message, cells=[], stdout="", limits_hit=[], duration_s=0.0)
    return Facts(execution, KernelFacts.empty(request), Reevaluation(ok=False, message="not run"), data)


def grade_run(path: Path, dataset: Dataset, settings: RunSettings) -> Facts:
    """Executes one notebook in a fresh sandbox and returns its facts; never raises for the notebook's faults."""
    data = dataset_facts(dataset)
    started = time.monotonic()
    try:
        nb = read_notebook(path)
    except NotebookUnreadable as exc:
        return not_run_facts("unreadable", str(exc), data, settings.request)
    with run_folder() as tmp:
        placement = prepare_placement(tmp, dataset.path, settings.isolated, settings.environment.python)
        reevaluator = Reevaluator(placement, settings)
        try:
            execution, kernel = asyncio.run(_run(nb, placement, settings, reevaluator.start))
            reevaluation = reevaluator.result(kernel.training_fit()) if kernel.model.saved else _no_model(kernel)
        finally:
            reevaluator.close()
    execution = replace(execution, duration_s=round(time.monotonic() - started, 2))
    return Facts(execution, kernel, reevaluation, data)


def _no_model(kernel: KernelFacts) -> Reevaluation:
    if not kernel.model.present:
        return Reevaluation(ok=False, message="no Keras model was trained or left in the notebook")
    return Reevaluation(ok=False, message="the model could not be saved for re-evaluation (was it built?)")


async def _run(
    nb: nbformat.NotebookNode, placement: Placement, settings: RunSettings, finished: Callable[[], None]
) -> tuple[ExecutionFacts, KernelFacts]:
    """Runs the notebook's cells; `finished` is called once the probe has saved the model and the kernel is killed."""
    limits = settings.limits
    group = ResourceGroup(limits)
    env = kernel_environment(settings.threads, placement)
    km = SandboxedKernelManager(
        placement=placement,
        limits=limits,
        env=env,
        group=group,
        transport="ipc",
        connection_file=str(placement.channels_dir / "kernel.json"),
    )
    if km.kernel_spec is not None:
        # The kernel runs behind bwrap, so a signal would hit bwrap: interrupt over the control channel.
        km.kernel_spec.interrupt_mode = "message"
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
    code_cells = [i for i, c in enumerate(nb.cells) if c.cell_type == "code"]
    states = {i: "not_run" for i in code_cells}
    status, message = "completed", ""
    limits_hit: list[str] = []
    deadline = time.monotonic() + limits.notebook_timeout_s

    def kill() -> None:
        proc = getattr(km.provisioner, "process", None)
        if proc is not None and proc.poll() is None:
            proc.kill()

    # The kernel can write to the run folder and to its socket folder, both on the host's disk.
    # The grader's calls between cells get a cell's time at most: a kernel that stops answering them is killed.
    probe_timeout = min(_HIDDEN_TIMEOUT_S, limits.cell_timeout_s)
    killed_for: str | None = None
    watchdog = Watchdog(limits, (placement.run_dir, placement.socket_dir), kill)
    try:
        async with client.async_setup_kernel(stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL):
            watchdog.start(km.provisioner.process.pid)  # type: ignore[union-attr]
            lib = json.dumps(placement.lib_path)
            request = json.dumps(json.dumps(to_builtins(settings.request)))  # JSON text, as a Python string literal
            setup = (
                f"import sys as _s; _s.path.insert(0, {lib}); import {KERNEL_PACKAGE}.probe as _p; "
                f"_p.install({request}, {json.dumps(placement.data_path)}, {json.dumps(placement.run_path)}); "
                "del _s, _p"
            )
            if not await _hidden(client, setup, limits.startup_timeout_s):
                raise RuntimeError("the grader's probe could not be loaded in the kernel")
            probe = f"__import__('{KERNEL_PACKAGE}.probe').probe"

            async def call_probe(code: str) -> bool:
                try:
                    return await _hidden(client, code, probe_timeout)
                except KernelUnresponsive:
                    kill()
                    raise

            async def finish() -> None:
                # The last facts and the saved model are written: the kernel has nothing left to do, so it is
                # killed now (not asked to shut down) and the re-evaluation starts while the run is torn down.
                await call_probe(f"{probe}.finish()")
                kill()
                finished()

            for number, index in enumerate(code_cells, start=1):
                remaining = deadline - time.monotonic()
                if remaining <= 1:
                    status = "notebook_timeout"
                    limits_hit.append(f"notebook stopped after {limits.notebook_timeout_s:g} s")
                    break
                cell_limit = min(limits.cell_timeout_s, remaining)
                client.timeout = max(1, int(cell_limit))
                await call_probe(f"{probe}.begin_cell({number})")
                try:
                    # nbclient interrupts a cell at its limit and waits up to iopub_timeout for its last output;
                    # this deadline is only a backstop.
                    backstop = cell_limit + client.iopub_timeout + _GRACE_S
                    await asyncio.wait_for(client.async_execute_cell(nb.cells[index], index), backstop)
                    states[index] = "timeout" if index in client.timed_out else "ok"
                    if index in client.timed_out:
                        # An interrupted cell must have stopped: a kernel still busy with it gets killed.
                        await _hidden(client, "", _GRACE_S)
                except (DeadKernelError, TimeoutError) as exc:
                    # nbclient turns the cancellation at our deadline into DeadKernelError: only a kernel
                    # that is really gone died by itself. KernelUnresponsive is a TimeoutError.
                    if isinstance(exc, DeadKernelError) and not await _alive(km):
                        states[index] = "kernel_died"
                        status = "kernel_died"
                        break
                    states[index] = "timeout"
                    killed_for = "it ignored the interrupt at the cell's time limit"
                    status = "notebook_timeout" if remaining < limits.cell_timeout_s else "kernel_died"
                    limits_hit.append(
                        f"cell {number} stopped after {cell_limit:g} s and its kernel was killed "
                        "(it did not respond to an interrupt)"
                    )
                    kill()
                    break
                if index in client.timed_out:
                    which = "notebook" if remaining < limits.cell_timeout_s else f"cell {number}"
                    total = limits.notebook_timeout_s if which == "notebook" else limits.cell_timeout_s
                    limits_hit.append(f"{which} stopped after {total:g} s (interrupted)")
                if not await call_probe(f"{probe}.end_cell({number})") and not await _alive(km):
                    status = "kernel_died"
                    break
            else:
                await finish()
            if status == "notebook_timeout" and await _alive(km):
                await finish()
    except DeadKernelError:
        status = "kernel_died"
    except KernelUnresponsive as exc:
        if not any(s != "not_run" for s in states.values()):
            status, message = "failed_to_start", f"the kernel did not start: {exc}"[:300]
        else:
            status, killed_for = "kernel_died", f"{exc}, so it was killed"
            limits_hit.append(f"kernel killed: {exc}")
    except (RuntimeError, TimeoutError, Empty) as exc:
        if not any(s != "not_run" for s in states.values()):
            status, message = "failed_to_start", f"the kernel did not start: {exc}"[:300]
        else:
            status = "kernel_died"
    finally:
        # nbclient leaves its at-exit cleanup registered when the kernel fails to start; it would print a
        # traceback when the grader exits.
        atexit.unregister(client._cleanup_kernel)
        watchdog.stop()
        oom = group.memory_killed()
        group.release()
    if watchdog.reason:
        limits_hit.append(watchdog.reason)
        status = "kernel_died"
    elif oom:
        limits_hit.append(f"killed at {memory_text(limits.memory_mb)} of memory")
        status = "kernel_died"

    def cells(indices: set[int]) -> str:
        return ", ".join(str(code_cells.index(i) + 1) for i in sorted(indices) if i in code_cells)

    if client.truncated_cells:
        limits_hit.append(f"output beyond {limits.output_kb} KB discarded (cell {cells(client.truncated_cells)})")
    if client.malformed_cells:
        limits_hit.append(f"malformed kernel messages ignored (cell {cells(client.malformed_cells)})")
    if status == "kernel_died":
        message = message or _death_message(code_cells, states, watchdog.reason or killed_for)
    kernel = _read_kernel_facts(placement.run_dir, settings.request)
    execution = ExecutionFacts(
        status=status,
        message=message,
        cells=[_cell_facts(nb.cells[i], n, states[i]) for n, i in enumerate(code_cells, start=1)],
        stdout=_stdout(nb, code_cells),
        limits_hit=limits_hit,
        duration_s=0.0,
        images=_images(nb, code_cells),
    )
    return execution, kernel


def _death_message(code_cells: list[int], states: dict[int, str], reason: str | None) -> str:
    number = next((n for n, i in enumerate(code_cells, start=1) if states[i] in ("kernel_died", "timeout")), None)
    where = f" while running cell {number}" if number else ""
    why = f" ({reason})" if reason else " (the process exited: os._exit, a crash or a signal)"
    return f"the kernel died{where}{why}; the cells after it did not run"


async def _alive(km: AsyncKernelManager) -> bool:
    try:
        return bool(await km.is_alive())
    except Exception:
        return False


async def _hidden(client: BoundedClient, code: str, timeout: float = _HIDDEN_TIMEOUT_S) -> bool:
    """Runs grader code in the kernel without recording it in the notebook; True if it succeeded.

    Raises KernelUnresponsive when no answer comes within `timeout`: student code can make the grader's
    calls hang (an input transformer, a blocked thread), and the kernel is then of no further use.
    """
    kc = client.kc
    if kc is None:
        return False
    msg_id = kc.execute(code, silent=True, store_history=False, allow_stdin=False)
    end = time.monotonic() + timeout
    while True:
        left = end - time.monotonic()
        if left <= 0:
            raise KernelUnresponsive(f"the kernel did not answer the grader within {timeout:g} s")
        try:
            msg = await kc.shell_channel.get_msg(timeout=min(left, 1.0))
        except Empty:
            if not await _alive(client.km):  # type: ignore[arg-type]
                return False
            continue
        if msg["parent_header"].get("msg_id") == msg_id:
            return bool(msg["content"].get("status") == "ok")


def _read_kernel_facts(run_dir: Path, request: ProbeRequest) -> KernelFacts:
    # The kernel controls this file: read only if it is a regular file of bounded size, without following
    # a link or waiting on a FIFO.
    try:
        kernel = decode(
            read_regular_file(run_dir / "facts.json", _MAX_FACTS_BYTES), KernelFacts, max_bytes=_MAX_FACTS_BYTES
        )
    except (OSError, DecodeError):
        return KernelFacts.empty(request)
    # What was asked is the grader's to say, whatever the file claims.
    return replace(kernel, request=request)


def _cell_facts(cell: Any, number: int, state: str) -> CellFacts:
    error = next((o for o in cell.get("outputs", []) if o.get("output_type") == "error"), None)
    source = cell.source[:_MAX_SOURCE]
    if error is None:
        return CellFacts(index=number, status=state, source=source)
    traceback = [strip_ansi(line) for line in error.get("traceback", [])]
    lines = [ln for block in traceback for ln in block.splitlines() if ln.strip()]
    return CellFacts(
        index=number,
        status="timeout" if state == "timeout" else "error" if state == "ok" else state,
        source=source,
        error_name=str(error.get("ename", ""))[:200],
        error_value=strip_ansi(str(error.get("evalue", "")))[:1000],
        traceback_tail=[ln[:500] for ln in lines[-8:]],
    )


def _stdout(nb: Any, code_cells: list[int]) -> str:
    """What the cells printed, bounded: each cell keeps its first and last lines, where the shapes, labels
    and scores the checks look for are printed, and drops the middle of a long output."""
    parts = []
    for i in code_cells:
        text = strip_ansi(
            "".join(
                out.get("text", "")
                for out in nb.cells[i].get("outputs", [])
                if out.get("output_type") == "stream" and out.get("name") == "stdout"
            )
        )
        if len(text) > _MAX_CELL_STDOUT:
            half = _MAX_CELL_STDOUT // 2
            text = text[:half] + "\n[...]\n" + text[-half:]
        parts.append(text)
    return "".join(parts)[-_MAX_STDOUT:]


def _images(nb: Any, code_cells: list[int]) -> dict[str, str]:
    images: dict[str, str] = {}
    for number, i in enumerate(code_cells, start=1):
        for out in nb.cells[i].get("outputs", []):
            png = (
                out.get("data", {}).get("image/png")
                if out.get("output_type") in ("display_data", "execute_result")
                else None
            )
            if isinstance(png, str) and len(png) < (2 << 20):
                try:
                    base64.b64decode(png, validate=False)
                except ValueError:
                    continue
                images[str(number)] = png.replace("\n", "")
    return images


class Reevaluator:
    """The grader's own evaluation of the saved model, in a fresh sandboxed process.

    It starts beside the kernel and, while the notebook runs, imports Keras, loads the dataset and warms
    TensorFlow up; then it waits for a line on stdin, which `start` sends the moment the kernel has saved
    the model and been killed, and later for the validation split to rebuild, which `result` sends once the
    kernel's facts are read. This keeps the re-evaluation's start-up off the critical path of a notebook's
    grading time.
    """

    def __init__(self, placement: Placement, settings: RunSettings) -> None:
        argv = [placement.python_path, "-m", f"{KERNEL_PACKAGE}.reevaluate", placement.run_path, placement.data_path]
        env = kernel_environment(settings.threads, placement)
        self.group = ResourceGroup(settings.limits)
        cmd = self.group.enter_prefix() + wrap_command(argv, placement, settings.limits, env, writable_run=False)
        self.stderr = tempfile.TemporaryFile()  # noqa: SIM115 - kept open for the process, closed in close()
        self.started = False
        self.proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self.stderr)
        # The saved model's config is the student's: it can ask for any amount of memory when it is built.
        # The cgroup caps that where one exists; the watchdog everywhere.
        self.memory_mb = settings.limits.memory_mb
        self.watchdog = Watchdog(settings.limits, (), self.proc.kill)
        self.watchdog.start(self.proc.pid)

    def start(self) -> None:
        """Says "go": the kernel has saved the model and is gone. `result` says it too if nobody did."""
        if self.started:
            return
        self.started = True
        with contextlib.suppress(OSError):  # it died already: `result` reports what it left
            self.proc.stdin.write(b"go\n")  # type: ignore[union-attr]
            self.proc.stdin.flush()  # type: ignore[union-attr]

    def result(self, fit: FitCall | None) -> Reevaluation:
        """The re-evaluation's answer, once it is told how `fit` (the training fit) prepared its data: the
        validation split to rebuild, and whether the pixels were divided by 255 (also when no fit is known)."""
        self.start()
        request = {
            "validation": to_builtins(ValidationRequest.of(fit)),
            "x_scaled": fit is None or fit.x.images != "train_raw",
        }
        message = json.dumps(request).encode() + b"\n"
        try:
            out, _ = self.proc.communicate(message, timeout=_REEVALUATE_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            return Reevaluation(ok=False, message=f"re-evaluation took longer than {_REEVALUATE_TIMEOUT_S:g} s")
        stopped = self.watchdog.reason
        if stopped is None and self.group.memory_killed():
            stopped = f"killed at {memory_text(self.memory_mb)} of memory"
        if stopped:
            return Reevaluation(ok=False, message=f"re-evaluation of the saved model stopped: {stopped}")
        lines = out.strip().splitlines()
        try:
            return decode(lines[-1], Reevaluation, max_bytes=_MAX_REEVALUATION_BYTES)
        except (IndexError, DecodeError):
            self.stderr.seek(0)
            tail = self.stderr.read().decode("utf-8", "replace").strip().splitlines()[-1:] or ["no output"]
            return Reevaluation(ok=False, message=f"re-evaluation failed: {tail[0][:300]}")

    def close(self) -> None:
        self.watchdog.stop()
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait()
        for stream in (self.proc.stdin, self.proc.stdout):
            if stream is not None:
                stream.close()
        self.stderr.close()
        self.group.release()
