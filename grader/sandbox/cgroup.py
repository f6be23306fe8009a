"""Memory and process limits of one run: its cgroup and the kill of everything in it, and its process tree."""

from __future__ import annotations

import contextlib
import functools
import os
import signal
import time
import uuid
from pathlib import Path

from grader.sandbox.limits import Limits

_GROUP_PREFIX = "mnist-grader-"
_CGROUP_FOLDERS = (Path("/sys/fs/cgroup"), Path("/sys/fs/cgroup/memory"), Path("/sys/fs/cgroup/pids"))


@functools.cache
def _sweep_stale_groups() -> None:
    """Removes the empty groups of graders that were killed before they could remove their own (once a run)."""
    for folder in _CGROUP_FOLDERS:
        try:
            entries = list(folder.glob(f"{_GROUP_PREFIX}*"))
        except OSError:
            continue
        for group in entries:
            owner = group.name[len(_GROUP_PREFIX) :].split("-", 1)[0]
            if owner.isdigit() and int(owner) != os.getpid() and not Path(f"/proc/{owner}").exists():
                with contextlib.suppress(OSError):
                    group.rmdir()


class ResourceGroup:
    """A cgroup (v2, else v1) capping memory and processes of one sandbox; absent where none can be made."""

    def __init__(self, limits: Limits) -> None:
        self.paths: list[Path] = []
        self.kind = "none"
        _sweep_stale_groups()
        name = f"{_GROUP_PREFIX}{os.getpid()}-{uuid.uuid4().hex[:8]}"
        memory = str(limits.memory_mb << 20)
        v2 = Path("/sys/fs/cgroup")
        try:
            if "memory" in (v2 / "cgroup.controllers").read_text().split():
                group = v2 / name
                group.mkdir()
                self.paths = [group]
                (group / "memory.max").write_text(memory)
                (group / "memory.swap.max").write_text("0")
                (group / "pids.max").write_text(str(limits.processes))
                self.kind = "v2"
                return
        except OSError:
            self.release()
        try:
            mem, pids = v2 / "memory" / name, v2 / "pids" / name
            mem.mkdir()
            self.paths = [mem]
            pids.mkdir()
            self.paths.append(pids)
            (mem / "memory.limit_in_bytes").write_text(memory)
            (pids / "pids.max").write_text(str(limits.processes))
            self.kind = "v1"
        except OSError:
            self.release()
            self.kind = "none"

    def enter_prefix(self) -> list[str]:
        """A command prefix that moves the process into this group before it becomes the sandbox."""
        if not self.paths:
            return []
        writes = " && ".join(f"echo $$ > {p}/cgroup.procs" for p in self.paths)
        return ["/bin/sh", "-c", f'{writes} && exec "$@"', "sh"]

    def memory_killed(self) -> bool:
        """Whether the kernel's OOM killer acted in this group."""
        for path in self.paths:
            for name, key in (("memory.events", "oom_kill"), ("memory.oom_control", "oom_kill")):
                try:
                    for line in (path / name).read_text().splitlines():
                        parts = line.split()
                        if parts[0] == key and int(parts[1]) > 0:
                            return True
                except (OSError, IndexError, ValueError):
                    continue
        return False

    def release(self) -> None:
        for path in reversed(self.paths):
            for _ in range(20):
                try:
                    path.rmdir()
                    break
                except FileNotFoundError:
                    break
                except OSError:
                    _kill_group(path)
                    time.sleep(0.05)
        self.paths = []


def _kill_group(path: Path) -> None:
    try:
        pids = [int(p) for p in (path / "cgroup.procs").read_text().split()]
    except OSError:
        return
    for pid in pids:
        with contextlib.suppress(OSError):  # already gone
            os.kill(pid, signal.SIGKILL)


def process_tree(root_pid: int) -> list[int]:
    """`root_pid` and all its descendants, read from /proc."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", "rb") as fh:
                stat = fh.read().rsplit(b")", 1)[1].split()
            children.setdefault(int(stat[1]), []).append(int(entry))
        except (OSError, IndexError, ValueError):
            continue
    tree, todo = [], [root_pid]
    while todo:
        pid = todo.pop()
        tree.append(pid)
        todo.extend(children.get(pid, []))
    return tree


def _rss_bytes(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/statm") as fh:
            return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, IndexError, ValueError):
        return 0


def _pss_bytes(pid: int) -> int:
    """Proportional set size: a page shared by n processes (a fork's copy-on-write memory) counts 1/n."""
    try:
        with open(f"/proc/{pid}/smaps_rollup") as fh:
            for line in fh:
                if line.startswith("Pss:"):
                    return int(line.split()[1]) << 10
    except (OSError, IndexError, ValueError):
        pass
    return _rss_bytes(pid)


def tree_memory(tree: list[int], limit: int) -> int:
    """Memory of a process tree. RSS is cheap but counts shared pages once per process, so a kernel that
    forks would seem to use its size again per child; above `limit` the sum is measured exactly."""
    rss = sum(_rss_bytes(p) for p in tree)
    return sum(_pss_bytes(p) for p in tree) if rss > limit else rss
