"""Receives the kernel's messages with a size cap and a shape check, so that nothing a kernel sends can crash the
grader, and what it makes the grader hold is bounded (for messages of a few parts: README, "Grader memory").

Student code controls its kernel process, session key included, so it can send any bytes on any socket. Three
layers stand between those bytes and nbclient:

- ZeroMQ refuses a message part over `max_bytes` before it is read whole (`zmq.MAXMSGSIZE`: it drops the
  connection, and `BoundedChannel` connects again; the message is lost), and queues at most `QUEUED_MESSAGES`
  messages per socket (`zmq.RCVHWM`: further messages wait in the kernel's own memory, or are dropped there).
- `BoundedChannel.get_msg` drops a message whose parts add up to more than `max_bytes`, that does not decode
  (bad JSON, bad signature, too few parts, nesting too deep) or that lacks the shape nbclient relies on.
- `grader.execute.BoundedClient.process_message` checks each output's content, keeps only what the grader reads
  and counts it against the output cap.

This relies on jupyter_client's channel and client internals (`AsyncZMQSocketChannel.socket` and `.session`,
the client's `*_channel_class` and `context` traits), which is why pyproject.toml pins jupyter_client.
"""

from __future__ import annotations

import contextlib
import time
from collections import deque
from queue import Empty
from typing import Any

import zmq
import zmq.asyncio
from jupyter_client.asynchronous.client import AsyncKernelClient
from jupyter_client.channels import AsyncZMQSocketChannel
from jupyter_client.session import Session
from traitlets import Integer, Type, default
from zmq.utils.monitor import parse_monitor_message

# Room for a message's header, parent header and metadata parts beside its content, and JSON escaping.
MESSAGE_OVERHEAD = 64 << 10
# Messages ZeroMQ keeps per socket before the grader reads them; the kernel's own queue is in its memory.
QUEUED_MESSAGES = 4
# How often a channel waiting for a message looks for a connection ZeroMQ dropped.
_RECONNECT_CHECK_MS = 100


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
    """A kernel channel that returns only well-formed messages within `max_bytes`, counting what it drops."""

    def __init__(self, socket: zmq.asyncio.Socket, session: Session, loop: Any = None) -> None:
        super().__init__(socket, session, loop)
        # The whole message gets the cap its context set on each part (bounded_context).
        self.max_bytes = int(socket.getsockopt(zmq.MAXMSGSIZE))
        self.oversized = 0
        self.malformed = 0
        # A part over zmq.MAXMSGSIZE never reaches get_msg: ZeroMQ ends the connection for good (a protocol
        # error is not retried), which the monitor reports; the channel then connects again.
        monitor = socket.get_monitor_socket(zmq.EVENT_DISCONNECTED)
        # Plain (not asyncio) views of both sockets, for reads that must finish without yielding to the loop.
        self._monitor: zmq.Socket[bytes] = zmq.Socket.shadow(monitor.underlying)
        self._monitor_owner = monitor
        self._now: zmq.Socket[bytes] = zmq.Socket.shadow(socket.underlying)
        self._pending: deque[dict[str, Any]] = deque()

    async def get_msg(self, timeout: float | None = None) -> dict[str, Any]:  # type: ignore[override]
        """The next acceptable message; Empty when none came within `timeout` seconds."""
        assert self.socket is not None
        deadline = None if timeout is None else time.monotonic() + timeout
        while not self._pending:
            self.reconnect()
            left = None if deadline is None else max(0, int((deadline - time.monotonic()) * 1000))
            wait = _RECONNECT_CHECK_MS if left is None else min(left, _RECONNECT_CHECK_MS)
            if await self.socket.poll(wait):
                self._keep(await self.socket.recv_multipart())
            elif left is not None and left <= wait:
                raise Empty
        return self._pending.popleft()

    def reconnect(self) -> None:
        """Connects again wherever ZeroMQ dropped the connection, counting each drop as an oversized message."""
        endpoints = []
        while self._monitor.poll(0):
            endpoints.append(parse_monitor_message(self._monitor.recv_multipart())["endpoint"].decode())
        if not endpoints:
            return
        self.oversized += len(endpoints)
        # ZeroMQ ignores a second connect to an endpoint it still lists, so the old one is disconnected first.
        # That ends its pipe at once, and ZeroMQ aborts the process if a message it has begun handing over (a
        # SUB socket reads the first part of the next message ahead, when polled) then loses its pipe: what is
        # queued is read first, whole, with no await in between.
        while True:
            try:
                self._keep(self._now.recv_multipart(zmq.NOBLOCK))
            except zmq.Again:
                break
        for endpoint in dict.fromkeys(endpoints):
            with contextlib.suppress(zmq.ZMQError):  # already gone
                self._now.disconnect(endpoint)
            self._now.connect(endpoint)

    def _keep(self, parts: list[bytes]) -> None:
        msg = self.checked(parts)
        if msg is not None:
            self._pending.append(msg)

    def checked(self, parts: list[bytes]) -> dict[str, Any] | None:
        """The decoded message, or None (counted) when it is too big, does not decode, or has the wrong shape."""
        if 0 <= self.max_bytes < sum(len(part) for part in parts):
            self.oversized += 1
            return None
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

    def close(self) -> None:
        if self.socket is not None and not self.socket.closed:
            self.socket.disable_monitor()
        self._monitor_owner.close(linger=0)
        super().close()


class BoundedKernelClient(AsyncKernelClient):
    """The kernel client nbclient uses: every channel bounded, and its own context with the socket limits."""

    max_message_bytes = Integer(MESSAGE_OVERHEAD, help="Largest kernel message (and message part) accepted.")

    shell_channel_class = Type(BoundedChannel)
    iopub_channel_class = Type(BoundedChannel)
    stdin_channel_class = Type(BoundedChannel)
    control_channel_class = Type(BoundedChannel)

    @default("context")
    def _bounded_context(self) -> zmq.asyncio.Context:
        self._created_context = True  # stop_channels destroys it
        return bounded_context(self.max_message_bytes)

    def dropped(self) -> tuple[int, int]:
        """Messages dropped since the last call on shell and IOPub: (over the size cap, malformed)."""
        oversized = malformed = 0
        for channel in (self.shell_channel, self.iopub_channel):
            assert isinstance(channel, BoundedChannel)
            channel.reconnect()
            oversized += channel.oversized
            malformed += channel.malformed
            channel.oversized = channel.malformed = 0
        return oversized, malformed
