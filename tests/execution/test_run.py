"""The run's state and its cell loop against a scripted fake kernel (no kernel, no sandbox): each outcome a
notebook can meet (a cell that raises, one past its time limit, one that ignores the interrupt, a dying kernel,
odd messages, the notebook's time running out) leaves the status, cell states and messages the report shows."""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path

import nbformat
import pytest

from grader.execution import run
from grader.execution.client import BoundedClient
from grader.execution.kernel import KernelUnresponsive
from grader.execution.notebook import read_notebook
from grader.execution.run import CellLoop, RunState
from grader.execution.settings import RunLimits
from grader.facts import ExecutionFacts
from tests.execution.fake_kernel import CAP, ScriptedKernel

LIMITS = RunLimits(cell_timeout_s=10, notebook_timeout_s=60)


@pytest.fixture(autouse=True)
def short_grace(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(run, "_GRACE_S", 0.2)  # how long a deaf kernel is waited for after an interrupt


def run_cells(
    nb: nbformat.NotebookNode, *, seconds_left: float = 60, on_cell: run.CellProgress | None = None
) -> tuple[ExecutionFacts, ScriptedKernel, list[str]]:
    """Runs `nb`'s cells on a scripted kernel; the facts, the kernel, and what was called when the run ended."""
    kernel = ScriptedKernel()
    client = BoundedClient(nb, output_limit=CAP, km=kernel, allow_errors=True, interrupt_on_timeout=True)
    client.iopub_timeout = 1
    client.kc = kernel  # type: ignore[assignment]
    state = RunState([i for i, c in enumerate(nb.cells) if c.cell_type == "code"], LIMITS)
    finished: list[str] = []
    deadline = time.monotonic() + seconds_left
    loop = CellLoop(nb, client, state, kernel.kill, lambda: finished.append("finished"), deadline, on_cell)
    try:
        asyncio.run(loop.run())
    except KernelUnresponsive as exc:  # as `_run` does
        state.unresponsive(exc)
    return state.execution(nb, client.truncated_cells, client.malformed_cells), kernel, finished


def notebook(*sources: str) -> nbformat.NotebookNode:
    return nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(s) for s in sources])


def statuses(facts: ExecutionFacts) -> list[str]:
    return [cell.status for cell in facts.cells]


def test_a_notebook_that_runs_through_completes_and_the_probe_finishes() -> None:
    facts, kernel, finished = run_cells(notebook("print one", "print two"))
    assert (facts.status, statuses(facts), facts.stdout) == ("completed", ["ok", "ok"], "one\ntwo\n")
    assert finished == ["finished"] and kernel.killed
    probe_calls = [code.split("probe.")[-1] for code in kernel.requests if "probe" in code]
    assert probe_calls == ["begin_cell(1)", "end_cell(1)", "begin_cell(2)", "end_cell(2)", "finish()"]


def test_each_code_cell_is_told_as_it_starts_and_a_dead_kernel_stops_the_telling() -> None:
    started: list[tuple[int, int]] = []
    nb = notebook("print one", "die", "print three")
    nb.cells.insert(1, nbformat.v4.new_markdown_cell("# not code"))
    facts, _, _ = run_cells(nb, on_cell=lambda number, total: started.append((number, total)))
    assert started == [(1, 3), (2, 3)] and statuses(facts) == ["ok", "kernel_died", "not_run"]


def test_a_cell_that_raises_is_an_error_and_the_next_cell_runs() -> None:
    facts, _, _ = run_cells(notebook("raise", "print after"))
    assert (facts.status, statuses(facts)) == ("completed", ["error", "ok"])
    error = facts.cells[0]
    assert (error.error_name, error.error_value, error.traceback_tail) == ("ValueError", "bad", ["ValueError: bad"])
    assert facts.stdout == "after\n"


def test_a_cell_past_its_limit_is_interrupted_and_the_next_cell_runs() -> None:
    facts, kernel, finished = run_cells(notebook("hang", "print after"))
    assert kernel.interrupts == 1
    assert (facts.status, statuses(facts)) == ("completed", ["timeout", "ok"])
    assert facts.limits_hit == ["cell 1 stopped after 10 s (interrupted)"]
    assert finished == ["finished"]


def test_a_cell_that_ignores_the_interrupt_gets_its_kernel_killed() -> None:
    facts, kernel, finished = run_cells(notebook("print before", "ignore", "print never"))
    assert kernel.killed and finished == []
    assert (facts.status, statuses(facts)) == ("kernel_died", ["ok", "timeout", "not_run"])
    assert facts.limits_hit == [
        "cell 2 stopped after 10 s and its kernel was killed (it did not respond to an interrupt)"
    ]
    assert facts.message == (
        "the kernel died while running cell 2 (it ignored the interrupt at the cell's time limit); "
        "the cells after it did not run"
    )


def test_a_kernel_that_dies_ends_the_run_with_what_ran_before() -> None:
    facts, _, finished = run_cells(notebook("print before", "die", "print never"))
    assert (facts.status, statuses(facts)) == ("kernel_died", ["ok", "kernel_died", "not_run"])
    assert facts.message.startswith("the kernel died while running cell 2 (the process exited")
    assert facts.stdout == "before\n" and finished == []


def test_odd_message_types_are_ignored() -> None:
    facts, _, _ = run_cells(notebook("odd", "print after"))
    assert (facts.status, statuses(facts), facts.stdout) == ("completed", ["ok", "ok"], "after odd\nafter\n")
    assert facts.limits_hit == []


def test_a_notebook_out_of_time_runs_no_further_cell_and_still_saves_the_model() -> None:
    facts, kernel, finished = run_cells(notebook("print one"), seconds_left=0.5)
    assert (facts.status, statuses(facts)) == ("notebook_timeout", ["not_run"])
    assert facts.limits_hit == ["notebook stopped after 60 s"]
    assert finished == ["finished"] and kernel.requests[-1].endswith("finish()")


def test_saved_outputs_of_cells_the_run_skips_do_not_count(tmp_path: Path) -> None:
    """Issue 18.10: a tagged or whitespace-only cell keeps no output from the file; only the run's outputs count."""
    saved = [{"output_type": "stream", "name": "stdout", "text": "Test accuracy: 0.99\n"}]
    cells = [
        {"cell_type": "code", "source": "print real", "metadata": {}, "outputs": saved, "execution_count": 1},
        {"cell_type": "code", "source": "raise", "metadata": {"tags": ["skip-execution"]}, "outputs": saved},
        {"cell_type": "code", "source": " \n", "metadata": {}, "outputs": saved, "execution_count": 2},
    ]
    path = tmp_path / "saved.ipynb"
    path.write_text(json.dumps({"nbformat": 4, "nbformat_minor": 5, "metadata": {}, "cells": cells}))
    facts, kernel, _ = run_cells(read_notebook(path, 1 << 20))
    assert facts.stdout == "real\n"
    assert "raise" not in kernel.requests  # nbclient skips the tagged cell
    assert facts.images == {}


def test_a_kernel_deaf_to_the_grader_before_any_cell_did_not_start() -> None:
    state = RunState([0, 1], LIMITS)
    state.unresponsive(KernelUnresponsive("the kernel did not answer the grader within 10 s"))
    assert state.status == "failed_to_start"
    assert state.message == "the kernel did not start: the kernel did not answer the grader within 10 s"


def test_a_kernel_deaf_to_the_grader_mid_run_was_killed() -> None:
    state = RunState([0, 1], LIMITS)
    state.cell_done(0, timed_out=False)
    state.unresponsive(KernelUnresponsive("the kernel did not answer the grader within 10 s"))
    facts = state.execution(notebook("print a", "print b"), set(), set())
    assert facts.status == "kernel_died"
    assert facts.limits_hit == ["kernel killed: the kernel did not answer the grader within 10 s"]
    assert "(the kernel did not answer the grader within 10 s, so it was killed)" in facts.message


@pytest.mark.parametrize(
    ("reason", "out_of_memory", "expected"),
    [
        ("the run wrote more than 64 MB", False, "the run wrote more than 64 MB"),
        (None, True, "killed at 4 GiB of memory"),
    ],
)
def test_what_the_sandbox_stopped_is_said(reason: str | None, out_of_memory: bool, expected: str) -> None:
    state = RunState([0], LIMITS)
    state.cell_done(0, timed_out=False)
    state.sandbox_stopped(reason, out_of_memory)
    facts = state.execution(notebook("print a"), set(), set())
    assert facts.status == "kernel_died" and facts.limits_hit == [expected]


def test_cut_and_malformed_output_is_listed_by_cell_number() -> None:
    state = RunState([1, 3], LIMITS)
    nb = nbformat.v4.new_notebook(
        cells=[nbformat.v4.new_markdown_cell("#"), notebook("a").cells[0], nbformat.v4.new_markdown_cell("#")]
        + [notebook("b").cells[0]]
    )
    facts = state.execution(nb, {3}, {1, 3})
    assert facts.limits_hit == [
        f"output beyond {LIMITS.output_kb} KB discarded (cell 2)",
        "malformed kernel messages ignored (cell 1, 2)",
    ]
