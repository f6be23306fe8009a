"""The bounded client against faked kernel messages, without a kernel (as nbclient's own tests do): output caps
for every output type, display updates, timeouts, a dead kernel, unknown and malformed messages, bad comms.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

import nbformat
import pytest
from nbclient.exceptions import DeadKernelError

from grader.execution.client import CELLS_OF_OUTPUT, OUTPUT_COST, BoundedClient
from tests.execution.fake_kernel import (
    CAP,
    IDLE,
    PARENT,
    FakeKernelClient,
    FakeKernelManager,
    display,
    message,
    reply,
    stream,
)


def run_cell(
    iopub: list[dict[str, Any]],
    shell: list[dict[str, Any]] | None = None,
    *,
    alive: bool = True,
    output_limit: int = CAP,
) -> tuple[BoundedClient, nbformat.NotebookNode]:
    """Executes one code cell against a faked kernel that sends `iopub` then goes idle, and replies `shell`."""
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("anything")])
    km = FakeKernelManager()
    client = BoundedClient(
        nb, output_limit=output_limit, km=km, allow_errors=True, interrupt_on_timeout=True, iopub_timeout=1
    )
    client.kc = FakeKernelClient([*iopub, IDLE], [reply()] if shell is None else shell, alive)  # type: ignore[assignment]
    client.timeout = 1
    asyncio.run(client.async_execute_cell(nb.cells[0], 0))
    return client, nb.cells[0]


def kept_bytes(cell: nbformat.NotebookNode) -> int:
    return len(json.dumps(cell.outputs))


NOTICE = "output beyond 16 KB was discarded"


def texts(cell: nbformat.NotebookNode) -> str:
    return "".join(o.get("text", "") + str(o.get("data", "")) for o in cell.outputs)


# ------------------------------------------------------------------------------------------- output cap


def test_a_flood_of_small_outputs_keeps_the_cap_and_says_so() -> None:
    client, cell = run_cell([stream("x" * 1000 + "\n") for _ in range(100)])
    assert client.truncated_cells == {0}
    assert CAP // 2 < kept_bytes(cell) <= client.cell_output[0] <= CAP
    assert NOTICE in texts(cell)


BIG = "x" * (CAP + 1)


@pytest.mark.parametrize(
    "flood",
    [
        [stream(BIG)],
        [stream(BIG, name="stderr")],
        [display(BIG)],
        [display(BIG, display_id="d")],
        [display(BIG, display_id="d", msg_type="update_display_data")],
        [message("execute_result", {"data": {"text/plain": BIG}, "metadata": {}, "execution_count": 1})],
        [message("error", {"ename": "E", "evalue": BIG, "traceback": []})],
        [message("error", {"ename": "E", "evalue": "", "traceback": [""] * (CAP // 64)})],
        [message("clear_output", {"wait": True})] * (CAP // 1000),
        [display("", display_id="d", msg_type="update_display_data")] * (CAP // 1000),
    ],
    ids=lambda f: f"{len(f)} x {f[0]['msg_type']}" + ("+id" if "transient" in f[0]["content"] else ""),
)
def test_every_output_type_counts_against_the_cap(flood: list[dict[str, Any]]) -> None:
    client, cell = run_cell([display("shown", display_id="d"), *flood, stream("after\n")])
    assert client.truncated_cells == {0}
    assert BIG not in texts(cell)
    assert client.cell_output[0] <= CAP


def test_display_updates_are_counted_and_cannot_grow_a_kept_output() -> None:
    updates = [display(f"{i}" * 4000, display_id="d", msg_type="update_display_data") for i in range(1, 10)]
    client, cell = run_cell([display("first", display_id="d"), *updates])
    assert client.truncated_cells == {0}
    shown = cell.outputs[0]["data"]["text/plain"]
    # The updates applied while there was room (each costs its size and its display id); the rest were dropped.
    assert shown in {f"{i}" * 4000 for i in range(1, 5)}
    assert kept_bytes(cell) < CAP


def test_many_display_ids_each_cost_room_so_their_bookkeeping_stays_bounded() -> None:
    client, _ = run_cell([display("", display_id=f"id-{i}") for i in range(1000)])
    assert len(client._display_id_map) <= CAP // OUTPUT_COST


def test_the_notebook_keeps_at_most_its_cells_worth_of_output() -> None:
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("x") for _ in range(CELLS_OF_OUTPUT + 4)])
    client = BoundedClient(nb, output_limit=CAP, km=FakeKernelManager(), allow_errors=True)
    for index, cell in enumerate(nb.cells):
        client.kc = FakeKernelClient([stream("y" * (CAP - 1000)), IDLE], [reply()])  # type: ignore[assignment]
        asyncio.run(client.async_execute_cell(cell, index))
    assert client.output_used <= CAP * CELLS_OF_OUTPUT
    assert client.truncated_cells == set(range(CELLS_OF_OUTPUT, CELLS_OF_OUTPUT + 4))


# ------------------------------------------------------------------------------------------- odd messages


def test_comm_messages_with_bad_widget_state_are_ignored() -> None:
    comms = [
        message("comm_open", {"comm_id": "c1", "target_name": "jupyter.widget", "data": {"state": {}}}),
        message("comm_open", {"comm_id": "c2", "target_name": "jupyter.widget", "data": {}}),
        message("comm_open", {"target_name": "jupyter.widget"}),
        message("comm_msg", {"comm_id": "c1", "data": {"state": {"msg_id": PARENT}, "buffer_paths": [["x"]]}}),
        message("comm_msg", {}),
        message("comm_close", {"comm_id": 7}),
    ]
    client, cell = run_cell([*comms, stream("after the comms\n")])
    assert texts(cell) == "after the comms\n"
    assert client.widget_state == {} and client.comm_objects == {}
    assert client.malformed_cells == set()


def test_unknown_message_types_are_ignored() -> None:
    odd = [message("no_such_type", {"x": 1}), message("execute_input", {"code": 1}), message("status", {})]
    client, cell = run_cell([*odd, stream("after\n")])
    assert texts(cell) == "after\n"


@pytest.mark.parametrize(
    "bad",
    [
        message("stream", {"name": "stdout", "text": {"not": "text"}}),
        message("stream", {"text": "no name"}),
        message("error", {"ename": "E", "evalue": "v", "traceback": [1, 2]}),
        message("display_data", {"data": "not a dict", "metadata": {}}),
        message("display_data", {"data": {}, "metadata": {}, "transient": "not a dict"}),
        message("display_data", {"data": {}, "metadata": {}, "transient": {"display_id": ["x"]}}),
        message("execute_result", {"data": {}, "metadata": {}, "execution_count": {"a": "dict"}}),
        message("display_data", {"data": {"image/png": [1, 2]}, "metadata": {}}),
        message("update_display_data", {"data": {"text/plain": 1}, "metadata": {}, "transient": {"display_id": "d"}}),
    ],
    ids=lambda m: json.dumps(m["content"])[:60],
)
def test_malformed_output_is_dropped_and_the_cell_goes_on(bad: dict[str, Any]) -> None:
    client, cell = run_cell([display("shown", display_id="d"), bad, stream("after\n")])
    assert "after" in texts(cell)
    assert client.malformed_cells == {0}
    assert all(isinstance(o.get("text", ""), str) for o in cell.outputs)


def test_only_what_the_grader_reads_is_kept_of_an_output() -> None:
    nested: Any = "leaf"
    for _ in range(100_000):
        nested = {"a": nested}
    rich = {"text/plain": ["two ", "lines"], "image/png": "iVBOR", "application/json": nested, "text/html": "<b>"}
    client, cell = run_cell([message("execute_result", {"data": rich, "metadata": nested, "execution_count": 3})])
    assert cell.outputs[0]["data"] == {"text/plain": "two lines", "image/png": "iVBOR"}
    assert cell.outputs[0]["metadata"] == {} and cell["execution_count"] == 3
    assert client.malformed_cells == set()


# ------------------------------------------------------------------------------------------- timeouts and death


def test_a_cell_past_its_time_limit_is_interrupted_and_recorded() -> None:
    client, cell = run_cell([stream("working\n")], shell=[])
    assert client.km.interrupts == 1  # type: ignore[union-attr]
    assert client.timed_out == {0}
    assert "working" in texts(cell)


def test_a_real_error_reply_is_not_mistaken_for_a_timeout() -> None:
    interrupted = message("error", {"ename": "KeyboardInterrupt", "evalue": "", "traceback": []})
    client, _ = run_cell([interrupted], shell=[reply("error")])
    assert client.timed_out == set()


def test_a_dead_kernel_raises_dead_kernel_error_and_keeps_the_output_before() -> None:
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("import os; os._exit(1)")])
    client = BoundedClient(nb, output_limit=CAP, km=FakeKernelManager(), allow_errors=True, interrupt_on_timeout=True)
    client.kc = FakeKernelClient([stream("before\n")], [], alive=False)  # type: ignore[assignment]
    client.timeout = 1
    with pytest.raises(DeadKernelError):
        asyncio.run(client.async_execute_cell(nb.cells[0], 0))
    assert texts(nb.cells[0]) == "before\n"
