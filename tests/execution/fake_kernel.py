"""Faked kernel messages and kernels for the execution tests, without a kernel (nbclient's `prepare_cell_mocks` idea).

`message` and its shorthands build decoded messages as jupyter_client hands them to nbclient; `FakeKernelClient`
replays fixed queues for one cell; `ScriptedKernel` answers every request of a whole run from a script read off
each cell's source, so the cell loop meets errors, timeouts, a deaf kernel and a dead one as it would for real.
"""

from __future__ import annotations

import asyncio
import uuid
from queue import Empty
from typing import Any

CAP = 16 << 10
PARENT = "execute-request-1"


def message(msg_type: str, content: dict[str, Any] | Any, parent: str = PARENT) -> dict[str, Any]:
    """A decoded kernel message as jupyter_client hands it to nbclient."""
    return {
        "header": {"msg_id": uuid.uuid4().hex, "msg_type": msg_type},
        "msg_id": "",
        "msg_type": msg_type,
        "parent_header": {"msg_id": parent},
        "metadata": {},
        "content": content,
        "buffers": [],
    }


def stream(text: str, name: str = "stdout", parent: str = PARENT) -> dict[str, Any]:
    return message("stream", {"name": name, "text": text}, parent)


def display(data: str, display_id: str | None = None, msg_type: str = "display_data") -> dict[str, Any]:
    content: dict[str, Any] = {"data": {"text/plain": data}, "metadata": {}}
    if display_id is not None:
        content["transient"] = {"display_id": display_id}
    return message(msg_type, content)


def idle(parent: str = PARENT) -> dict[str, Any]:
    return message("status", {"execution_state": "idle"}, parent)


def reply(status: str = "ok", parent: str = PARENT) -> dict[str, Any]:
    return message("execute_reply", {"status": status, "execution_count": 1}, parent)


IDLE = idle()


class FakeChannel:
    """A channel that hands out queued messages, then raises Empty (or stays silent when `then_empty` is False).

    It holds the list it is given, so whoever queues into that list later is heard."""

    def __init__(self, messages: list[dict[str, Any]], *, then_empty: bool = True) -> None:
        self.messages = messages
        self.then_empty = then_empty

    async def get_msg(self, timeout: float | None = None) -> dict[str, Any]:
        if self.messages:
            return self.messages.pop(0)
        if self.then_empty:
            raise Empty
        while not self.messages:
            await asyncio.sleep(0.01)
        return self.messages.pop(0)


class FakeKernelClient:
    def __init__(self, iopub: list[dict[str, Any]], shell: list[dict[str, Any]], alive: bool = True) -> None:
        self.iopub_channel = FakeChannel(list(iopub), then_empty=False)
        self.shell_channel = FakeChannel(list(shell))
        self.alive = alive

    def execute(self, code: str, **kwargs: Any) -> str:
        return PARENT

    async def is_alive(self) -> bool:
        return self.alive


class FakeKernelManager:
    def __init__(self) -> None:
        self.interrupts = 0

    async def interrupt_kernel(self) -> None:
        self.interrupts += 1


class ScriptedKernel:
    """A kernel client and manager in one, answering each request as its script says.

    A student cell's source is its behaviour: `print <text>` prints and succeeds; `raise` ends in an error;
    `hang` answers nothing until interrupted (then it answers again); `ignore` answers nothing, interrupted or
    not; `die` exits; `odd` sends message types nbclient does not know, then prints. The grader's own requests
    (silent) are answered `ok` while the kernel answers at all.
    """

    def __init__(self) -> None:
        self.iopub: list[dict[str, Any]] = []
        self.shell: list[dict[str, Any]] = []
        self.iopub_channel = FakeChannel(self.iopub, then_empty=False)
        self.shell_channel = FakeChannel(self.shell)
        self.alive = True
        self.deaf = False  # answers nothing any more
        self.interrupts = 0
        self.requests: list[str] = []  # every code the kernel was sent, the grader's included
        self.killed = False

    def execute(self, code: str, silent: bool = False, **kwargs: Any) -> str:
        msg_id = uuid.uuid4().hex
        self.requests.append(code)
        if not self.alive or self.deaf:
            return msg_id
        if silent:
            self.shell.append(reply("ok", msg_id))
        else:
            self._cell(code, msg_id)
        return msg_id

    def _cell(self, code: str, msg_id: str) -> None:
        if code.startswith("print "):
            self.iopub += [stream(code.removeprefix("print ") + "\n", parent=msg_id), idle(msg_id)]
            self.shell.append(reply("ok", msg_id))
        elif code == "raise":
            error = {"ename": "ValueError", "evalue": "bad", "traceback": ["\x1b[31mValueError\x1b[0m: bad"]}
            self.iopub += [message("error", error, msg_id), idle(msg_id)]
            self.shell.append(reply("error", msg_id))
        elif code == "odd":
            odd = [message("no_such_type", {"x": 1}, msg_id), message("comm_open", {"comm_id": 7}, msg_id)]
            self.iopub += [*odd, stream("after odd\n", parent=msg_id), idle(msg_id)]
            self.shell.append(reply("ok", msg_id))
        elif code == "die":
            self.alive = False
        elif code == "ignore":
            self.deaf = True
        # "hang": nothing until an interrupt

    async def interrupt_kernel(self) -> None:
        self.interrupts += 1

    async def is_alive(self) -> bool:
        return self.alive

    def kill(self) -> None:
        self.killed = True
        self.alive = False
