"""nbclient with every output bounded while it streams, and cells past their time limit recorded."""

from __future__ import annotations

import json
from typing import Any, TypeGuard

import nbformat
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionComplete

from grader.kernel_channels import BoundedKernelClient

# The whole notebook keeps at most this many cells' worth of output.
CELLS_OF_OUTPUT = 16
# Output message types: each one's content is checked, reduced to what the grader reads, and counted against the cap.
_OUTPUT_TYPES = frozenset({"stream", "display_data", "update_display_data", "execute_result", "error", "clear_output"})
# What the grader reads of a display: its text and its PNG (the student's figures).
_KEPT_MIMES = ("text/plain", "image/png")
# An output's own objects in the grader's memory, charged beside its text so that many tiny outputs cost what
# they take (measured with nbformat 5.11: a stream output about 0.55 KB, an empty display about 1.4 KB).
_STREAM_COST = 640
OUTPUT_COST = 1536
_LINE_COST = 64  # each traceback line, a string object of its own
# The error in the stand-in reply nbclient returns, without waiting for the kernel's, for a cell it interrupted
# at its time limit (`error_on_timeout`).
_TIMEOUT_REPLY = {"ename": "CellTimeout", "evalue": "the cell ran past its time limit", "traceback": []}


class BoundedClient(NotebookClient):
    """nbclient that keeps a bounded amount of output, ignores what it cannot use, and records timed-out cells.

    Every output message (streams, displays with or without a display id, display updates, results, errors,
    clears) counts against a cap per cell, so a flood in one cell (200 epochs of progress bars) cannot hide
    what later cells print; the whole notebook keeps at most `CELLS_OF_OUTPUT` cells' worth. No message the
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
        size = len(json.dumps(kept)) + (_STREAM_COST if msg_type == "stream" else OUTPUT_COST)
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
        if used + size > self.output_limit or self.output_used + size > self.output_limit * CELLS_OF_OUTPUT:
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
