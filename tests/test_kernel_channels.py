"""The bounded channel against real ZeroMQ sockets fed malformed messages, and the memory a decoded message holds."""

from __future__ import annotations

import asyncio
import tracemalloc
from collections.abc import Iterator
from pathlib import Path
from queue import Empty
from typing import Any

import pytest
import zmq
import zmq.asyncio
from jupyter_client.session import Session

from grader.kernel_channels import MESSAGE_OVERHEAD, BoundedChannel, bounded_context, well_formed
from tests.execution.fake_kernel import message, reply, stream


def test_well_formed_requires_what_nbclient_reads_without_checking() -> None:
    assert well_formed(stream("x"))
    assert well_formed(reply())
    assert not well_formed(message("execute_reply", {"execution_count": 1}))
    assert not well_formed({**stream("x"), "content": ["x"]})
    assert not well_formed({**stream("x"), "parent_header": {"msg_id": ["x"]}})
    assert not well_formed({**stream("x"), "msg_type": 3})


class Pair:
    """A publisher playing the kernel and a BoundedChannel subscribed to it, over an ipc socket."""

    def __init__(self, folder: Path, max_bytes: int) -> None:
        self.session = Session(key=b"secret")
        self.kernel_context = zmq.Context()
        self.kernel = self.kernel_context.socket(zmq.PUB)
        url = f"ipc://{folder}/iopub"
        self.kernel.bind(url)
        self.context = bounded_context(max_bytes)
        socket = self.context.socket(zmq.SUB)
        socket.setsockopt(zmq.SUBSCRIBE, b"")
        socket.connect(url)
        self.channel = BoundedChannel(socket, Session(key=b"secret"))

    def send(self, msg_type: str, content: Any, buffers: list[bytes] | None = None) -> None:
        self.session.send(self.kernel, msg_type, content, buffers=buffers)

    def send_parts(self, parts: list[bytes]) -> None:
        self.kernel.send_multipart(parts)

    async def next_text(self, timeout: float = 5) -> str:
        """The text of the next message the channel accepts (a marker is re-sent until one arrives)."""
        while True:
            self.send("stream", {"name": "stdout", "text": "marker"})
            try:
                return str((await self.channel.get_msg(timeout=0.1))["content"]["text"])
            except Empty:
                timeout -= 0.1
                assert timeout > 0, "the channel stopped receiving"

    def close(self) -> None:
        self.channel.close()
        self.kernel.close(linger=0)
        self.context.destroy(linger=0)
        self.kernel_context.destroy(linger=0)


@pytest.fixture
def pair(tmp_path: Path) -> Iterator[Pair]:
    pair = Pair(tmp_path, max_bytes=64 << 10)
    yield pair
    pair.close()


def test_channel_drops_malformed_messages_and_goes_on(pair: Pair) -> None:
    async def scenario() -> None:
        assert await pair.next_text() == "marker"
        signed = pair.session.serialize(pair.session.msg("stream", {"name": "stdout", "text": "x"}))
        bad = [
            [b"<IDS|MSG>", b"not a signature", *signed[2:]],
            [b"too", b"few"],
            [b"<IDS|MSG>"],
        ]
        for parts in bad:
            pair.send_parts(parts)
        pair.send("stream", b'["content", "is", "a", "list"]')
        pair.send("execute_reply", {"no": "status"})
        pair.send("stream", {"name": "stdout", "text": "good"})
        assert (await pair.channel.get_msg(timeout=5))["content"]["text"] == "good"
        assert pair.channel.malformed == 5

    asyncio.run(scenario())


@pytest.mark.parametrize("unit", [b"{}", b"[{}]", b"[" * 30 + b"]" * 30], ids=["objects", "nested", "deep"])
def test_a_decoded_message_holds_at_most_the_factor_the_readme_states(unit: bytes) -> None:
    """README "Grader memory" charges each decoded message up to 45 times its size: the densest JSON found."""
    max_bytes = (256 << 10) + MESSAGE_OVERHEAD
    session = Session(key=b"secret")
    parts = session.serialize(session.msg("execute_reply", {"status": "ok"}))
    room = max_bytes - sum(map(len, parts)) - 64
    parts[5] = b'{"status":"ok","x":[' + b",".join([unit] * (room // (len(unit) + 1))) + b"]}"
    parts[1] = session.sign(parts[2:6])
    assert sum(map(len, parts)) <= max_bytes  # what the relay passes on
    channel = BoundedChannel(zmq.asyncio.Context.instance().socket(zmq.SUB), session)
    tracemalloc.start()
    try:
        msg = channel.checked(parts)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
        channel.close()
    assert msg is not None and msg["content"]["status"] == "ok"
    assert peak < 45 * max_bytes
