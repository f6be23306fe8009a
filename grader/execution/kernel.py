"""The kernel started inside the sandbox behind the relay, and the grader's own calls into it."""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path
from queue import Empty
from typing import Any

import zmq.asyncio
from jupyter_client.manager import AsyncKernelManager
from nbclient import NotebookClient
from traitlets import Type, default

from grader.kernel_channels import MESSAGE_OVERHEAD, BoundedKernelClient, bounded_context
from grader.kernel_relay import CHANNELS, RelayConfig
from grader.sandbox.bwrap import wrap_command
from grader.sandbox.cgroup import ResourceGroup
from grader.sandbox.limits import Limits
from grader.sandbox.placement import Placement, hand_to_sandbox

HIDDEN_TIMEOUT_S = 120.0


class KernelUnresponsive(TimeoutError):
    """The kernel did not answer one of the grader's own calls in time (its code may have hijacked them)."""


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


async def alive(km: AsyncKernelManager) -> bool:
    try:
        return bool(await km.is_alive())
    except Exception:
        return False


async def hidden(client: NotebookClient, code: str, timeout: float = HIDDEN_TIMEOUT_S) -> bool:
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
            if not await alive(client.km):  # type: ignore[arg-type]
                return False
            continue
        if msg["parent_header"].get("msg_id") == msg_id:
            return bool(msg["content"].get("status") == "ok")
