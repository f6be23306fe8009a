"""Stopping a sandbox that breaks its memory, process or disk limit, and saying which."""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from pathlib import Path

from grader.sandbox.cgroup import process_tree, tree_memory
from grader.sandbox.limits import Limits, memory_text
from grader.sandbox.safe_tree import directory_bytes


class Watchdog:
    """Polls a sandbox's process tree and the host folders it can write, and kills it over a limit, saying which."""

    def __init__(
        self, limits: Limits, folders: Sequence[Path], kill: Callable[[], None], interval: float = 0.25
    ) -> None:
        self.limits = limits
        self.folders = tuple(folders)
        self.kill = kill
        self.interval = interval
        self.pid: int | None = None
        self.reason: str | None = None
        self.peak_rss = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="sandbox-watchdog", daemon=True)

    def start(self, pid: int) -> None:
        self.pid = pid
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=5)

    def _run(self) -> None:
        try:
            self._watch()
        except BaseException as exc:
            if self._stop.is_set():
                return
            # A sandbox nobody watches could take the host's memory or disk: a watchdog that fails for any
            # reason takes its sandbox down with it, and says so.
            self._trip(f"killed because the grader's watchdog failed ({type(exc).__name__}: {exc})"[:200])

    def _watch(self) -> None:
        assert self.pid is not None
        ticks = 0
        while not self._stop.wait(self.interval):
            tree = process_tree(self.pid)
            rss = tree_memory(tree, self.limits.memory_mb << 20)
            self.peak_rss = max(self.peak_rss, rss)
            if rss > self.limits.memory_mb << 20:
                self._trip(f"killed at {memory_text(self.limits.memory_mb)} of memory")
            elif len(tree) > self.limits.processes + 3:
                self._trip(f"killed at {self.limits.processes} processes")
            ticks += 1
            written = sum(directory_bytes(folder) for folder in self.folders) if ticks % 8 == 0 else 0
            if written > self.limits.scratch_mb << 20:
                self._trip(f"killed for writing more than {self.limits.scratch_mb} MB")
            if self.reason:
                return

    def _trip(self, reason: str) -> None:
        if self.reason is None:
            self.reason = reason
        self.kill()
