"""The bubblewrap command line, the resource limits and the watchdog; knows nothing about notebooks.

A sandboxed process sees the system read-only (only the paths Python needs), a fresh size-limited
scratch directory as its home and working directory, the dataset read-only, one run directory for its
results, and the socket directory of its kernel channels; nothing else is writable, not even the
sandbox's own root and /dev, which live in memory. It has no network (own network namespace), its own
pid namespace, uid 65534, no capabilities, cannot make further user namespaces, and dies with the grader.
Memory and process counts are capped by a cgroup when one can be created, and by a watchdog that
measures the process tree either way.
"""

from __future__ import annotations

import contextlib
import functools
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from grader.errors import GraderError

INSIDE_DATA = "/grader/data/mnist.npz"
INSIDE_RUN = "/grader/run"
INSIDE_LIB = "/grader/lib"
INSIDE_HOME = "/home/student"
KERNEL_PACKAGE = "grader_kernel"
_KERNEL_SOURCE = Path(__file__).parent / "kernel"
_ETC_ENTRIES = ("ld.so.cache", "ld.so.conf", "ld.so.conf.d", "localtime", "fonts", "passwd", "group")


class SandboxUnavailable(GraderError):
    """bubblewrap is missing or cannot create namespaces here."""


@dataclass(frozen=True, slots=True)
class Limits:
    """Resource limits for one notebook; set in rubric.yaml under `limits`."""

    cell_timeout_s: float = 300.0
    notebook_timeout_s: float = 900.0
    startup_timeout_s: float = 60.0
    memory_mb: int = 4096
    processes: int = 256
    output_kb: int = 1024
    scratch_mb: int = 512
    file_mb: int = 256


@dataclass(frozen=True, slots=True)
class Placement:
    """Where one run's files live on the host, and the paths the sandboxed process uses for them."""

    run_dir: Path  # results written by the kernel: facts.json, model.keras
    socket_dir: Path  # the kernel's ipc sockets and connection file (same path inside)
    lib_dir: Path  # holds the `grader_kernel` package
    dataset: Path
    isolated: bool

    @property
    def data_path(self) -> str:
        return INSIDE_DATA if self.isolated else str(self.dataset)

    @property
    def run_path(self) -> str:
        return INSIDE_RUN if self.isolated else str(self.run_dir)

    @property
    def lib_path(self) -> str:
        return INSIDE_LIB if self.isolated else str(self.lib_dir)


def bwrap_path() -> str | None:
    return shutil.which("bwrap")


@functools.cache
def _bwrap_option(path: str, option: str) -> bool:
    """Whether this bubblewrap knows `option` (--disable-userns came with 0.8.0)."""
    try:
        out = subprocess.run([path, "--help"], capture_output=True, text=True, timeout=10, check=False)
    except (OSError, subprocess.SubprocessError):
        return False
    return option in out.stdout + out.stderr


def require_bwrap() -> str:
    path = bwrap_path()
    if path is None:
        raise SandboxUnavailable(
            "bubblewrap (bwrap) is not installed, and student code is never run unsandboxed by default: "
            "install it with `apt-get install bubblewrap` (or run `make demo`), or pass --no-sandbox "
            "to run submissions with your own rights"
        )
    return path


def prepare_placement(root: Path, dataset: Path, isolated: bool) -> Placement:
    """Creates the run, socket and library directories of one execution under `root`."""
    run_dir = root / "run"
    socket_dir = root / "sock"
    lib_dir = root / "lib"
    for d in (run_dir, socket_dir, lib_dir):
        d.mkdir(parents=True, exist_ok=True)
    # The kernel package is linked, not copied: the sandbox binds its real folder read-only.
    link = lib_dir / KERNEL_PACKAGE
    if not link.exists():
        link.symlink_to(_KERNEL_SOURCE.resolve(), target_is_directory=True)
    # The uid inside maps to nobody's view of these folders; the kernel must be able to write here.
    os.chmod(run_dir, 0o777)
    os.chmod(socket_dir, 0o777)
    return Placement(run_dir=run_dir, socket_dir=socket_dir, lib_dir=lib_dir, dataset=dataset, isolated=isolated)


def kernel_environment(threads: int, placement: Placement) -> dict[str, str]:
    """The environment of a sandboxed process: nothing of the grader's own, threads pinned to its share."""
    n = str(max(1, threads))
    return {
        "PATH": f"{Path(sys.executable).parent}:/usr/local/bin:/usr/bin:/bin",
        "HOME": INSIDE_HOME if placement.isolated else str(placement.run_dir),
        "LANG": "C.UTF-8",
        "PYTHONPATH": placement.lib_path,
        "PYTHONDONTWRITEBYTECODE": "1",
        "MPLBACKEND": "module://matplotlib_inline.backend_inline",
        "MPLCONFIGDIR": (INSIDE_HOME if placement.isolated else str(placement.run_dir)) + "/.mpl",
        "KERAS_HOME": (INSIDE_HOME if placement.isolated else str(placement.run_dir)) + "/.keras",
        "TF_CPP_MIN_LOG_LEVEL": "2",
        "TF_NUM_INTRAOP_THREADS": n,
        "TF_NUM_INTEROP_THREADS": "1" if threads <= 2 else "2",
        "OMP_NUM_THREADS": n,
        "MKL_NUM_THREADS": n,
        "OPENBLAS_NUM_THREADS": n,
        "CUDA_VISIBLE_DEVICES": "",
    }


def wrap_command(
    argv: list[str], placement: Placement, limits: Limits, env: dict[str, str], *, writable_run: bool = True
) -> list[str]:
    """`argv` as it runs in the sandbox (or with only the environment reset and limits set, when not isolated).

    The re-evaluation passes `writable_run=False`: it reads what the kernel left and changes nothing.
    """
    rlimits = ["prlimit", f"--fsize={limits.file_mb << 20}", "--core=0", "--"] if shutil.which("prlimit") else []
    if not placement.isolated:
        return [*rlimits, "env", "-i", *(f"{k}={v}" for k, v in env.items()), *argv]
    bwrap = require_bwrap()
    cmd = [
        *rlimits,
        bwrap,
        "--unshare-all",
        "--unshare-user",
        "--uid",
        "65534",
        "--gid",
        "65534",
        "--die-with-parent",
        "--new-session",
        "--cap-drop",
        "ALL",
        "--clearenv",
        "--ro-bind",
        "/usr",
        "/usr",
    ]
    for name in ("bin", "lib", "lib64", "sbin"):
        target = Path("/") / name
        if target.is_symlink():
            cmd += ["--symlink", os.readlink(target), str(target)]
        elif target.exists():
            cmd += ["--ro-bind", str(target), str(target)]
    for name in _ETC_ENTRIES:
        path = Path("/etc") / name
        if path.exists():
            cmd += ["--ro-bind", str(path), str(path)]
    cmd += [
        "--proc",
        "/proc",
        "--dev",
        "/dev",
        "--size",
        str(64 << 20),
        "--tmpfs",
        "/dev/shm",
        "--size",
        str(64 << 20),
        "--tmpfs",
        "/tmp",
        "--size",
        str(limits.scratch_mb << 20),
        "--tmpfs",
        INSIDE_HOME,
        "--ro-bind",
        str(placement.dataset),
        INSIDE_DATA,
        "--ro-bind",
        str((placement.lib_dir / KERNEL_PACKAGE).resolve()),
        f"{INSIDE_LIB}/{KERNEL_PACKAGE}",
        "--bind" if writable_run else "--ro-bind",
        str(placement.run_dir),
        INSIDE_RUN,
        "--bind",
        str(placement.socket_dir),
        str(placement.socket_dir),
    ]
    # After the scratch mounts, so that an interpreter installed under /tmp is not hidden by them.
    for prefix in sorted({sys.base_prefix, sys.prefix, str(Path(sys.executable).resolve().parent.parent)}):
        cmd += ["--ro-bind", prefix, prefix]
    cmd += [
        # The sandbox's root and /dev are memory that no size limit covers: after the mounts above are
        # made, nothing but the size-limited scratch folders, the run folder and the sockets is writable.
        "--remount-ro",
        "/dev",
        "--remount-ro",
        "/",
        "--chdir",
        INSIDE_HOME,
    ]
    if _bwrap_option(bwrap, "--disable-userns"):
        # A user namespace of its own would give the student's code root's powers over new mounts and
        # more of the host kernel's attack surface; nothing a notebook needs.
        cmd.append("--disable-userns")
    for key, value in env.items():
        cmd += ["--setenv", key, value]
    return [*cmd, "--", *argv]


def memory_text(megabytes: int) -> str:
    """A memory limit as people write it: "4 GiB", "1500 MB"."""
    return f"{megabytes // 1024} GiB" if megabytes % 1024 == 0 else f"{megabytes} MB"


# ---------------------------------------------------------------------------------------------- cgroups


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


# ---------------------------------------------------------------------------------------------- watchdog


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


# Each file or folder costs the host at least an inode and a block: counting them keeps a notebook that
# makes millions of empty files from exhausting the host's inodes under a limit meant for bytes.
_ENTRY_BYTES = 4096


def directory_bytes(path: Path) -> int:
    """What `path` costs the host's disk, as the scratch limit counts it."""
    total = 0
    for dirpath, dirs, files in os.walk(path):
        for name in (*dirs, *files):
            with contextlib.suppress(OSError):  # gone since listed
                total += os.lstat(os.path.join(dirpath, name)).st_size + _ENTRY_BYTES
    return total


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
        self.reason = reason
        self.kill()
