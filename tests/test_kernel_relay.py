"""The relay between kernel and grader, run as the grader runs it: `python -m grader.kernel_relay` starting a kernel
as its child. The kernel here is a small ZeroMQ program that binds the five channels as ipykernel does and, asked
on shell, sends what a hostile kernel would; the grader is played by plain sockets connected to the relay.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
import zmq
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from grader.kernel_relay import CHANNELS, MAX_PARTS, QUEUED_MESSAGES, DropCounts, Relay, RelayConfig
from grader.sandbox.cgroup import process_tree
from tests.conftest import ROOT

MAX_BYTES = 64 << 10

# Binds like ipykernel (ROUTER for the request channels, XPUB for IOPub), says "welcome" with its pid when the
# grader subscribes, and on shell runs [b"do", action, *arguments], then replies [b"done", action].
KERNEL = r"""
import json, os, sys, time
import zmq

paths = json.loads(sys.argv[1])
context = zmq.Context()
sockets = {}
for channel, path in paths.items():
    sockets[channel] = context.socket(zmq.XPUB if channel == "iopub" else zmq.ROUTER)
    sockets[channel].bind(f"ipc://{path}")
iopub = sockets["iopub"]
poller = zmq.Poller()
for sock in sockets.values():
    poller.register(sock, zmq.POLLIN)
while True:
    for sock, _ in poller.poll():
        parts = sock.recv_multipart()
        if sock is iopub:
            if parts[0][:1] == b"\x01":
                iopub.send_multipart([b"welcome", str(os.getpid()).encode()])
            continue
        split = next(i for i, part in enumerate(parts) if part in (b"do", b"ping"))
        idents, (verb, action, *arguments) = parts[:split], parts[split:]
        if verb == b"ping":  # control: the answer goes to whoever asked
            sock.send_multipart([*idents, b"pong", action])
            continue
        if action == b"parts":
            count, size = int(arguments[0]), int(arguments[1])
            buffer = memoryview(b"x" * size)
            iopub.send_multipart([buffer] * count, copy=False)
            iopub.send_multipart([b"after"])
        elif action == b"burst":
            for i in range(int(arguments[0])):
                iopub.send_multipart([b"burst", str(i).encode()])
        elif action == b"input":  # the kernel asks on stdin whoever made the shell request
            sockets["stdin"].send_multipart([*idents, b"input?"])
        elif action == b"exit":
            sock.send_multipart([*idents, b"done", action])
            time.sleep(0.2)
            os._exit(int(arguments[0]))
        sock.send_multipart([*idents, b"done", action])
"""


# Plays the grader's process: starts the relay as its child, as jupyter_client does, and exits with its status.
GRADER = r"""
import json, os, subprocess, sys
config = {**json.loads(sys.argv[1]), "grader_pid": os.getpid()}
relay = subprocess.Popen([sys.executable, "-m", "grader.kernel_relay", json.dumps(config), "--", *sys.argv[2:]])
sys.exit(relay.wait())
"""


def relay_config(folder: Path, grader_pid: int) -> RelayConfig:
    """A relay's sockets for the grader and the kernel's, all in `folder`."""
    return RelayConfig(
        grader_side={channel: f"ipc://{folder}/grader-{channel}" for channel in CHANNELS},
        kernel_side={channel: f"{folder}/kernel-{channel}" for channel in CHANNELS},
        counts_path=str(folder / "dropped"),
        max_bytes=MAX_BYTES,
        grader_pid=grader_pid,
    )


class Grader:
    """The grader's side: a process that starts the relay and its kernel, and sockets connected to the relay."""

    def __init__(self, folder: Path) -> None:
        self.config = relay_config(folder, grader_pid=0)  # the stand-in grader puts in its own
        kernel = folder / "kernel.py"
        kernel.write_text(KERNEL, encoding="utf-8")
        argv = [sys.executable, "-c", GRADER, self.config.to_json()]
        argv += [sys.executable, str(kernel), json.dumps(self.config.kernel_side)]
        self.process = subprocess.Popen(argv, cwd=ROOT)
        self.context: zmq.Context[zmq.Socket[bytes]] = zmq.Context()
        self.shell = self.socket(zmq.DEALER, "shell", b"client")
        self.stdin = self.socket(zmq.DEALER, "stdin", b"client")
        self.iopub = self.socket(zmq.SUB, "iopub")
        self.iopub.setsockopt(zmq.SUBSCRIBE, b"")
        welcome, pid = self.next(self.iopub, timeout=20)
        assert welcome == b"welcome"
        self.kernel_pid = int(pid)
        (self.relay_pid,) = process_tree(self.process.pid)[1:2]
        assert process_tree(self.relay_pid) == [self.relay_pid, self.kernel_pid]

    def socket(self, kind: int, channel: str, identity: bytes | None = None) -> zmq.Socket[bytes]:
        sock = self.context.socket(kind)
        sock.setsockopt(zmq.RCVHWM, QUEUED_MESSAGES)  # as the grader's sockets: the relay must wait for room
        if identity is not None:
            sock.setsockopt(zmq.ROUTING_ID, identity)
        sock.connect(self.config.grader_side[channel])
        return sock

    @staticmethod
    def next(sock: zmq.Socket[bytes], timeout: float = 10) -> list[bytes]:
        assert sock.poll(int(timeout * 1000)), "nothing came through the relay"
        return sock.recv_multipart()

    def do(self, action: str, *arguments: int) -> None:
        self.shell.send_multipart([b"do", action.encode(), *(str(a).encode() for a in arguments)])
        assert self.next(self.shell) == [b"done", action.encode()]

    def dropped(self) -> DropCounts:
        return DropCounts.read(Path(self.config.counts_path))

    def close(self) -> None:
        self.context.destroy(linger=0)
        for pid in (self.kernel_pid, self.relay_pid):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait()


@pytest.fixture
def grader(tmp_path: Path) -> Iterator[Grader]:
    grader = Grader(tmp_path)
    yield grader
    grader.close()


def test_a_message_of_many_parts_stops_at_the_relay_and_the_next_one_passes(grader: Grader) -> None:
    # 20,000 parts of 1 KB: each part far under the cap, together 20 MB held by the relay, not by the grader.
    grader.do("parts", 20_000, 1024)
    assert grader.next(grader.iopub) == [b"after"]
    assert grader.dropped() == DropCounts(oversized=0, too_many_parts=1)
    grader.do("parts", MAX_PARTS, 16)  # as many parts as a message may have
    assert len(grader.next(grader.iopub)) == MAX_PARTS
    assert grader.next(grader.iopub) == [b"after"]
    assert grader.dropped().too_many_parts == 1


def test_a_message_over_the_size_cap_is_dropped_whole_or_in_parts(grader: Grader) -> None:
    grader.do("parts", 1, MAX_BYTES + 1)
    assert grader.next(grader.iopub) == [b"after"]
    grader.do("parts", 3, MAX_BYTES // 2)
    assert grader.next(grader.iopub) == [b"after"]
    assert grader.dropped() == DropCounts(oversized=2, too_many_parts=0)
    grader.do("parts", 2, MAX_BYTES // 2)  # exactly the cap
    assert [len(part) for part in grader.next(grader.iopub)] == [MAX_BYTES // 2] * 2


def test_replies_reach_the_socket_that_asked(grader: Grader) -> None:
    # The kernel manager and the client both talk on control, as in jupyter_client; each gets its own answer.
    manager, client = grader.socket(zmq.DEALER, "control"), grader.socket(zmq.DEALER, "control", b"client")
    for _ in range(3):
        manager.send_multipart([b"ping", b"manager"])
        client.send_multipart([b"ping", b"client"])
        assert grader.next(manager) == [b"pong", b"manager"]
        assert grader.next(client) == [b"pong", b"client"]
    # The kernel asks for input on stdin, addressed by the identity its shell request came from. The relay's
    # stdin socket may connect a moment after IOPub's welcome (the kernel's ROUTER drops what it cannot route).
    deadline = time.monotonic() + 10
    while not grader.stdin.poll(20) and time.monotonic() < deadline:
        grader.do("input")
    assert grader.next(grader.stdin) == [b"input?"]


def test_a_grader_that_reads_slowly_loses_nothing(grader: Grader) -> None:
    grader.do("burst", 500)
    time.sleep(0.5)  # the relay's queues fill and it stops reading; the rest waits in the kernel
    received = [grader.next(grader.iopub) for _ in range(500)]
    assert received == [[b"burst", str(i).encode()] for i in range(500)]


def test_the_relay_exits_soon_after_its_kernel_while_reading_a_message_of_many_parts(grader: Grader) -> None:
    # Reading 2,000,000 parts takes the relay seconds; the grader takes the relay for the kernel, so it must not
    # outlive the kernel by that long.
    grader.shell.send_multipart([b"do", b"parts", b"2000000", b"0"])
    time.sleep(0.3)
    grader.shell.send_multipart([b"do", b"exit", b"0"])
    grader.process.wait(timeout=60)
    # Had the relay read the whole message, it would have counted it as dropped: it left in the middle of it.
    assert gone(grader.kernel_pid) and grader.dropped().too_many_parts == 0, "the relay outlived its kernel"


def test_the_relay_exits_with_its_kernel_and_its_status(grader: Grader) -> None:
    grader.do("exit", 3)
    assert grader.process.wait(timeout=10) == 3


def gone(pid: int) -> bool:
    """Whether a process has ended: no longer there, or a zombie waiting to be reaped (it is not our child)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(") ", 1)[1].startswith("Z")
    except (OSError, IndexError):
        return True


def all_gone(pids: list[int], timeout: float = 5) -> bool:
    deadline = time.monotonic() + timeout
    while not all(map(gone, pids)) and time.monotonic() < deadline:
        time.sleep(0.05)
    return all(map(gone, pids))


def test_the_kernel_dies_with_the_relay(grader: Grader) -> None:
    os.kill(grader.relay_pid, signal.SIGKILL)
    assert all_gone([grader.kernel_pid]), "the kernel outlived its relay"


def test_relay_and_kernel_die_with_the_grader(grader: Grader) -> None:
    os.kill(grader.process.pid, signal.SIGKILL)
    grader.process.wait()
    assert all_gone([grader.relay_pid, grader.kernel_pid]), "the relay or the kernel outlived the grader"


def test_drop_counts_read_as_zero_before_anything_is_dropped(tmp_path: Path) -> None:
    assert DropCounts.read(tmp_path / "absent") == DropCounts()
    (tmp_path / "short").write_bytes(b"\x01")
    assert DropCounts.read(tmp_path / "short") == DropCounts()


class StandIn:
    """In place of the kernel's process, for a relay run in this process: running until `stop`."""

    returncode = 0

    def __init__(self) -> None:
        self.stopped = threading.Event()

    def poll(self) -> int | None:
        return 0 if self.stopped.is_set() else None


@contextmanager
def running(relay: Relay) -> Iterator[Relay]:
    """The relay passing messages in a thread of this process, with a stand-in for its kernel's process."""
    child = StandIn()
    thread = threading.Thread(target=relay.run, args=(child,))
    thread.start()
    try:
        yield relay
    finally:
        child.stopped.set()
        thread.join()


@pytest.fixture(scope="module")
def in_process(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[zmq.Socket[bytes], zmq.Socket[bytes], Path]]:
    """A relay in a thread of this process, a kernel's IOPub socket behind it and a grader's in front."""
    folder = tmp_path_factory.mktemp("relay")
    config = relay_config(folder, grader_pid=os.getpid())
    context: zmq.Context[zmq.Socket[bytes]] = zmq.Context()
    kernel = context.socket(zmq.XPUB)
    kernel.bind(f"ipc://{config.kernel_side['iopub']}")
    with running(Relay(config, context)):
        grader = context.socket(zmq.SUB)
        grader.setsockopt(zmq.SUBSCRIBE, b"")
        grader.connect(config.grader_side["iopub"])
        assert kernel.poll(10_000), "the subscription did not reach the kernel"
        kernel.recv()
        yield kernel, grader, Path(config.counts_path)
    context.destroy(linger=0)


# Messages as the sizes of their parts: few or many parts, small or large, empty parts included.
messages = st.lists(
    st.one_of(
        st.lists(st.integers(0, MAX_BYTES // 4), min_size=1, max_size=8),
        st.lists(st.integers(0, 64), min_size=MAX_PARTS - 2, max_size=MAX_PARTS + 40),
        st.lists(st.integers(MAX_BYTES // 2, MAX_BYTES + 10), min_size=1, max_size=3),
    ),
    max_size=12,
)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(messages)
def test_the_relay_passes_exactly_the_messages_within_the_limits_in_order(
    in_process: tuple[zmq.Socket[bytes], zmq.Socket[bytes], Path], messages: list[list[int]]
) -> None:
    kernel, grader, counts = in_process
    before = DropCounts.read(counts)
    sent = [[bytes([i % 251]) * size for size in sizes] for i, sizes in enumerate(messages)]
    for parts in [*sent, [b"end"]]:
        kernel.send_multipart(parts)
    received = []
    while (parts := Grader.next(grader)) != [b"end"]:
        received.append(parts)
    within = [p for p in sent if len(p) <= MAX_PARTS and sum(map(len, p)) <= MAX_BYTES]
    assert received == within
    after = DropCounts.read(counts)
    assert after.too_many_parts - before.too_many_parts == sum(len(p) > MAX_PARTS for p in sent)
    assert after.oversized - before.oversized == len(sent) - len(within) - sum(len(p) > MAX_PARTS for p in sent)


def test_the_relay_never_follows_a_link_in_place_of_a_kernel_socket(tmp_path: Path) -> None:
    """The kernel owns its socket folder: a link there, before it binds or after it closes a socket, must not make
    the relay (outside the sandbox, root when the grader is) connect to what it points to on the host."""
    host_only = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)  # stands in for /run/docker.sock and the like
    host_only.bind(str(tmp_path / "host-only.sock"))
    host_only.listen(8)
    host_only.settimeout(2)
    config = relay_config(tmp_path, grader_pid=os.getpid())
    Path(config.kernel_side["shell"]).symlink_to(tmp_path / "host-only.sock")  # before the kernel binds
    context: zmq.Context[zmq.Socket[bytes]] = zmq.Context()
    stdin = context.socket(zmq.ROUTER)
    stdin.bind(f"ipc://{config.kernel_side['stdin']}")
    try:
        with running(Relay(config, context)) as relay:
            deadline = time.monotonic() + 10
            while "stdin" in relay.unconnected and time.monotonic() < deadline:
                time.sleep(0.01)
            assert "stdin" not in relay.unconnected, "the relay did not connect to a real kernel socket"
            # After it connected: the kernel closes that socket and puts a link where it was; the relay reconnects.
            stdin.close(linger=0)
            Path(config.kernel_side["stdin"]).unlink(missing_ok=True)
            Path(config.kernel_side["stdin"]).symlink_to(tmp_path / "host-only.sock")
            with pytest.raises(TimeoutError):
                host_only.accept()
            assert "shell" in relay.unconnected
    finally:
        context.destroy(linger=0)
        host_only.close()
