"""Receives the kernel's messages through its relay with a size cap and a shape check, so that nothing a kernel
sends can crash the grader, and what it makes the grader hold is bounded (README, "Grader memory").

Student code controls its kernel process, session key included, so it can send any bytes on any socket. Four
layers stand between those bytes and nbclient:

- The relay (`grader.kernel_relay`), a process in the notebook's own cgroup, receives every message the kernel
  sends, so that a message of any size or number of parts is held in the notebook's memory, not the grader's.
  It passes on only messages of at most `max_parts` parts adding up to at most `max_bytes`, and counts the rest.
- The grader's own sockets connect only to the relay. They refuse a part over `max_bytes` (`zmq.MAXMSGSIZE`) and
  queue at most `QUEUED_MESSAGES` messages each (`zmq.RCVHWM`): further messages wait in the relay, then in the
  kernel, whose memory they are.
- `BoundedChannel.get_msg` drops a message that does not decode (bad JSON, bad signature, too few parts, nesting
  too deep) or that lacks the shape nbclient relies on.
- `grader.execution.client.BoundedClient.process_message` checks each output's content, keeps only what the grader reads
  and counts it against the output cap.

This relies on jupyter_client's channel and client internals (`AsyncZMQSocketChannel.socket` and `.session`,
the client's `*_channel_class` and `context` traits), which is why pyproject.toml pins jupyter_client.
"""

from __future__ import annotations

import time
from pathlib import Path
from queue import Empty
from typing import Any

import zmq
import zmq.asyncio
from jupyter_client.asynchronous.client import AsyncKernelClient
from jupyter_client.channels import AsyncZMQSocketChannel
from jupyter_client.session import Session
from traitlets import Integer, Type, Unicode, default

from grader.kernel_relay import QUEUED_MESSAGES, DropCounts

# Room for a message's header, parent header and metadata parts beside its content, and JSON escaping.
MESSAGE_OVERHEAD = 64 << 10


def bounded_context(max_bytes: int) -> zmq.asyncio.Context:
    """A ZeroMQ context whose sockets refuse message parts over `max_bytes` and queue few messages."""
    context = zmq.asyncio.Context()
    # Context-level options are the defaults of every socket it creates, set before each one connects.
    context.setsockopt(zmq.MAXMSGSIZE, max_bytes)
    context.setsockopt(zmq.RCVHWM, QUEUED_MESSAGES)
    return context


def well_formed(msg: dict[str, Any]) -> bool:
    """Whether a decoded message has the shape nbclient and the grader read without checking."""
    if not all(isinstance(msg.get(key), dict) for key in ("header", "parent_header", "metadata", "content")):
        return False
    if not isinstance(msg.get("msg_type"), str) or not isinstance(msg.get("buffers"), list):
        return False
    parent_id = msg["parent_header"].get("msg_id")
    if parent_id is not None and not isinstance(parent_id, str):
        return False
    # nbclient reads a reply's status without a default.
    return not msg["msg_type"].endswith("_reply") or isinstance(msg["content"].get("status"), str)


class BoundedChannel(AsyncZMQSocketChannel):
    """A kernel channel that returns only well-formed messages, counting those it drops."""

    def __init__(self, socket: zmq.asyncio.Socket, session: Session, loop: Any = None) -> None:
        super().__init__(socket, session, loop)
        self.malformed = 0

    async def get_msg(self, timeout: float | None = None) -> dict[str, Any]:  # type: ignore[override]
        """The next acceptable message; Empty when none came within `timeout` seconds."""
        assert self.socket is not None
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            left = None if deadline is None else max(0, int((deadline - time.monotonic()) * 1000))
            if not await self.socket.poll(left):
                raise Empty
            msg = self.checked(await self.socket.recv_multipart())
            if msg is not None:
                return msg

    def checked(self, parts: list[bytes]) -> dict[str, Any] | None:
        """The decoded message, or None (counted) when it does not decode or has the wrong shape."""
        try:
            _, message_parts = self.session.feed_identities(parts)
            msg = self.session.deserialize(message_parts)
        except Exception:  # whatever the bytes make the decoder raise, the message is only dropped
            self.malformed += 1
            return None
        if not well_formed(msg):
            self.malformed += 1
            return None
        return msg


class BoundedKernelClient(AsyncKernelClient):
    """The kernel client nbclient uses: every channel bounded, its own context with the socket limits, and the
    relay's count of the messages it dropped."""

    max_message_bytes = Integer(MESSAGE_OVERHEAD, help="Largest kernel message (and message part) accepted.")
    drop_counts = Unicode(help="The file where the kernel's relay counts the messages it did not pass on.")

    shell_channel_class = Type(BoundedChannel)
    iopub_channel_class = Type(BoundedChannel)
    stdin_channel_class = Type(BoundedChannel)
    control_channel_class = Type(BoundedChannel)

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._relay_seen = DropCounts()

    @default("context")
    def _bounded_context(self) -> zmq.asyncio.Context:
        self._created_context = True  # stop_channels destroys it
        return bounded_context(self.max_message_bytes)

    def dropped(self) -> tuple[int, int]:
        """Messages from the kernel dropped since the last call: (over the size cap, malformed).

        The relay passes on IOPub in order, so what it dropped before a cell's last output is counted by then.
        """
        relay = DropCounts.read(Path(self.drop_counts))
        oversized = relay.oversized - self._relay_seen.oversized
        malformed = relay.too_many_parts - self._relay_seen.too_many_parts
        self._relay_seen = relay
        for channel in (self.shell_channel, self.iopub_channel):
            assert isinstance(channel, BoundedChannel)
            malformed += channel.malformed
            channel.malformed = 0
        return oversized, malformed
