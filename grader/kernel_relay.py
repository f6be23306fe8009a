"""Carries messages between the sandboxed kernel and the grader, so that what a kernel sends costs its own memory.

ZeroMQ caps the size of each part of a message (`zmq.MAXMSGSIZE`) but not the number of parts, and it assembles
a whole message before anyone can look at it. A kernel that sends one message of thousands of parts would make
whoever receives it hold all of them. The relay is that receiver: the grader starts it as the kernel's process
(it starts the sandboxed kernel as its child), in the notebook's own cgroup and under its watchdog, so a message
of any size or number of parts is held in memory charged to the notebook, and at worst kills the notebook. The
grader's sockets connect only to the relay, which passes on a message from the kernel only if it has at most
`max_parts` parts adding up to at most `max_bytes`; what it drops it counts in a small file (`DropCounts`) that
the grader reads after each cell.

Run as `python -m grader.kernel_relay CONFIG -- COMMAND...` (CONFIG is `RelayConfig` as JSON). It exits with the
kernel's exit status once the kernel has exited. It dies with the grader and the kernel dies with it (a
parent-death signal on each, and bubblewrap's --die-with-parent), so a grader killed outright leaves nothing.
It imports nothing but ZeroMQ and the standard library, and holds at most one message per direction of each
channel beside ZeroMQ's own small queues.
"""

from __future__ import annotations

import ctypes
import json
import os
import resource
import signal
import stat
import struct
import subprocess
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import zmq

# Request-reply channels: the grader's clients (several may share one, as the kernel manager and the client do on
# control) talk to a ROUTER here, which keeps their identities in the envelope; the kernel sees one DEALER.
REQUEST_CHANNELS = ("shell", "control", "stdin", "hb")
CHANNELS = (*REQUEST_CHANNELS, "iopub")
# A Jupyter message is an identity, a delimiter, a signature, four JSON parts and its buffers; the grader reads
# no buffers (it plays no widget front end), so this leaves ample room.
MAX_PARTS = 32
# The kernel answers on stdin to the identity a shell request came from, so both sockets present one identity.
_IDENTITY = b"grader-relay"
# Messages ZeroMQ queues on each socket of the relay and of the grader: a kernel that sends faster than the grader
# reads fills the relay's queues, then its own, which are in its memory.
QUEUED_MESSAGES = 4
_IDLE_POLL_MS = 100  # how often an idle relay looks whether its kernel has exited
_RETRY_MS = 5  # how soon a message the grader is not ready for is offered again
_DRAIN_S = 0.5  # after the kernel exits: how long what it sent last may take to reach the grader
_QUIET_MS = 50  # ... and how long nothing may move before the relay stops waiting for more
_LINGER_MS = 500
_PR_SET_PDEATHSIG = 1
# While reading a message of many parts: how many parts between two looks at whether the kernel has exited.
_PARTS_BETWEEN_CHECKS = 1 << 16
_COUNTS = struct.Struct("<QQ")


@dataclass(frozen=True, slots=True)
class RelayConfig:
    """Where the relay listens for the grader and where it finds the kernel, per channel, and what it passes."""

    grader_side: dict[str, str]  # channel -> endpoint the relay binds, reachable only by the grader
    kernel_side: dict[str, str]  # channel -> the socket file the kernel binds, in the sandbox's socket folder
    counts_path: str  # where the relay writes its DropCounts
    max_bytes: int
    grader_pid: int  # the relay's parent, with which it dies
    max_parts: int = MAX_PARTS

    def to_json(self) -> str:
        return json.dumps(asdict(self))

    @classmethod
    def from_json(cls, text: str) -> RelayConfig:
        return cls(**json.loads(text))


@dataclass(slots=True)
class DropCounts:
    """Messages from the kernel the relay did not pass on, since it started."""

    oversized: int = 0  # parts adding up to more than max_bytes
    too_many_parts: int = 0

    def write(self, fd: int) -> None:
        # One write of 16 bytes at a fixed place: the grader reads whole counts.
        os.pwrite(fd, _COUNTS.pack(self.oversized, self.too_many_parts), 0)

    @classmethod
    def read(cls, path: Path) -> DropCounts:
        """The counts the relay wrote; zero before it dropped anything."""
        try:
            data = path.read_bytes()
        except FileNotFoundError:
            return cls()
        if len(data) < _COUNTS.size:
            return cls()
        return cls(*_COUNTS.unpack_from(data))


@dataclass(slots=True)
class _Route:
    """One direction of one channel, with the message it holds when the receiving side is not ready for it."""

    source: zmq.Socket[bytes]
    dest: zmq.Socket[bytes]
    from_kernel: bool
    pending: list[zmq.Frame] | None = None


class _KernelExited(Exception):
    """The kernel exited while the relay was reading a message: nobody is left to pass it to."""


class Relay:
    """The relay's sockets and routes. The kernel's side is connected socket by socket as the kernel binds them
    (`_connect_kernel_sockets`): through a descriptor of the socket file, never by its path."""

    def __init__(self, config: RelayConfig, context: zmq.Context[zmq.Socket[bytes]]) -> None:
        self.config = config
        self.counts = DropCounts()
        self.counts_fd = os.open(config.counts_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        self.routes: list[_Route] = []
        self.unconnected: dict[str, zmq.Socket[bytes]] = {}
        self.child: subprocess.Popen[bytes] | None = None
        for channel in CHANNELS:
            request = channel in REQUEST_CHANNELS
            front = context.socket(zmq.ROUTER if request else zmq.XPUB)
            back = context.socket(zmq.DEALER if request else zmq.XSUB)
            if request:
                # A full queue towards the grader makes send raise zmq.Again instead of dropping the message.
                front.setsockopt(zmq.ROUTER_MANDATORY, 1)
                back.setsockopt(zmq.ROUTING_ID, _IDENTITY)
            else:
                front.setsockopt(zmq.XPUB_NODROP, 1)
            for sock in (front, back):
                sock.setsockopt(zmq.SNDHWM, QUEUED_MESSAGES)
                sock.setsockopt(zmq.RCVHWM, QUEUED_MESSAGES)
                sock.setsockopt(zmq.LINGER, _LINGER_MS)
            front.bind(config.grader_side[channel])
            self.unconnected[channel] = back
            # From the grader: requests, or on IOPub its subscription, which the kernel answers with a welcome.
            self.routes += [_Route(front, back, from_kernel=False), _Route(back, front, from_kernel=True)]

    def run(self, child: subprocess.Popen[bytes]) -> int:
        """Passes messages until the kernel exits, then what is left for a moment; the kernel's exit status."""
        self.child = child
        poller_timeout = _IDLE_POLL_MS
        try:
            while child.poll() is None:
                self._connect_kernel_sockets()
                self._step(poller_timeout)
                poller_timeout = _RETRY_MS if self._waiting() or self.unconnected else _IDLE_POLL_MS
            end = time.monotonic() + _DRAIN_S
            while time.monotonic() < end and (self._step(_QUIET_MS) or self._waiting()):
                pass
        except _KernelExited:
            pass
        return child.returncode if child.returncode >= 0 else 128 - child.returncode

    def _connect_kernel_sockets(self) -> None:
        """Connects to each kernel socket that is now bound.

        The kernel owns its socket folder, so it can put a link where a socket was, and ZeroMQ connects by path,
        following links, with the relay's rights (outside the sandbox, root's when the grader is root). So the
        file is opened without following a link, must be a socket, and is connected through its descriptor,
        which also keeps a reconnection on that same socket whatever the folder holds later.
        """
        for channel, back in list(self.unconnected.items()):
            try:
                fd = os.open(self.config.kernel_side[channel], os.O_PATH | os.O_NOFOLLOW)
            except OSError:
                continue  # not bound yet
            if not stat.S_ISSOCK(os.fstat(fd).st_mode):
                os.close(fd)  # a link or anything else: never connected; the kernel loses that channel
                continue
            back.connect(f"ipc:///proc/self/fd/{fd}")  # the descriptor stays open as long as the relay runs
            del self.unconnected[channel]

    def _waiting(self) -> bool:
        return any(route.pending is not None for route in self.routes)

    def _step(self, timeout_ms: int) -> bool:
        """Receives what is ready on routes with nothing pending, and offers what is pending; whether any moved."""
        poller = zmq.Poller()
        for route in self.routes:
            if route.pending is None:
                poller.register(route.source, zmq.POLLIN)
        ready = dict(poller.poll(timeout_ms))
        moved = False
        for route in self.routes:
            if route.pending is None and ready.get(route.source, 0) & zmq.POLLIN:
                route.pending = self._receive(route)
            if route.pending is not None:
                moved = self._offer(route) or moved
        return moved

    def _receive(self, route: _Route) -> list[zmq.Frame] | None:
        """The next message from the route's source; None (counted) when one from the kernel is over the limits.

        It is read part by part so that the relay's own objects stay few whatever the number of parts; ZeroMQ
        has already assembled the whole message in the relay's memory, which is the notebook's.
        """
        parts: list[zmq.Frame] = []
        size, count = 0, 0
        while True:
            frame = route.source.recv(copy=False)
            count += 1
            if count % _PARTS_BETWEEN_CHECKS == 0 and self.child is not None and self.child.poll() is not None:
                raise _KernelExited  # reading millions of parts takes seconds: the grader must see the kernel gone
            size += len(frame)
            within = count <= self.config.max_parts and size <= self.config.max_bytes
            if within or not route.from_kernel:  # what the grader sends is passed on whole
                parts.append(frame)
            if not route.source.getsockopt(zmq.RCVMORE):
                break
        if not route.from_kernel:
            return parts
        if count > self.config.max_parts:
            self.counts.too_many_parts += 1
        elif size > self.config.max_bytes:
            self.counts.oversized += 1
        else:
            return parts
        self.counts.write(self.counts_fd)
        return None

    @staticmethod
    def _offer(route: _Route) -> bool:
        """Sends the pending message if its receiver has room; whether it left."""
        assert route.pending is not None
        try:
            route.dest.send_multipart(route.pending, zmq.NOBLOCK, copy=False)
        except zmq.Again:
            return False
        except zmq.ZMQError:
            pass  # addressed to no grader socket there is (EHOSTUNREACH): dropped, as the kernel's ROUTER would
        route.pending = None
        return True


def _die_with_parent() -> None:
    """Asks Linux to kill this process when its parent dies (the relay's parent is the grader; the kernel's, the
    relay), however the parent dies."""
    ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)


def main(argv: list[str]) -> int:
    if len(argv) < 3 or argv[1] != "--":
        print("usage: python -m grader.kernel_relay CONFIG -- COMMAND...", file=sys.stderr)
        return 2
    config = RelayConfig.from_json(argv[0])
    # The kernel's limits are set inside its sandbox command; the relay's own core would hold what it relays.
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    _die_with_parent()
    if os.getppid() != config.grader_pid:
        return 1  # the grader died before the signal was asked for
    # The kernel starts before any ZeroMQ thread exists, so that nothing but this thread is forked.
    child = subprocess.Popen(argv[2:], preexec_fn=_die_with_parent)  # noqa: PLW1509 - one call, no threads yet
    context: zmq.Context[zmq.Socket[bytes]] = zmq.Context()
    try:
        return Relay(config, context).run(child)
    finally:
        if child.poll() is None:
            child.kill()
        context.destroy(linger=_LINGER_MS)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
