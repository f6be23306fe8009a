"""The bubblewrap command line, the resource limits and the watchdog; knows nothing about notebooks.

A sandboxed process sees the system read-only (only the paths Python needs), a fresh size-limited
scratch directory as its home and working directory, the dataset read-only, one run directory for its
results, and the socket directory of its kernel channels; nothing else is writable, not even the
sandbox's own root and /dev, which live in memory. It has no network (own network namespace), its own
pid namespace, uid 65534 (on the host too, when the grader is root), no capabilities, a seccomp filter
(`grader.seccomp`), cannot make further user namespaces, and dies with the grader.
Memory and process counts are capped by a cgroup when one can be created, and by a watchdog that
measures the process tree and the host folders either way. The host folders the sandbox writes are walked
and removed without recursion and without following links.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import os
import shlex
import shutil
import signal
import stat
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from grader.errors import GraderError
from grader.seccomp import filter_program

INSIDE_DATA = "/grader/data/mnist.npz"
INSIDE_RUN = "/grader/run"
INSIDE_LIB = "/grader/lib"
INSIDE_ENV = "/grader/env"
INSIDE_HOME = "/home/student"
KERNEL_PACKAGE = "grader_kernel"
_GRADER_PACKAGE = Path(__file__).resolve().parent
_KERNEL_SOURCE = Path(__file__).parent / "kernel"
_ETC_ENTRIES = ("ld.so.cache", "ld.so.conf", "ld.so.conf.d", "localtime", "fonts", "passwd", "group")
_log = logging.getLogger(__name__)
# nobody and nogroup: the sandbox's uid inside, and on the host when the grader runs as root.
NOBODY = 65534


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

    root: Path  # the run's own folder, which the others are in
    run_dir: Path  # results written by the kernel: facts.json, model.keras
    socket_dir: Path  # the kernel's ipc sockets and connection file (same path inside)
    channels_dir: Path  # the sockets on which the kernel's relay serves the grader; never shown to the sandbox
    lib_dir: Path  # holds the `grader_kernel` package
    dataset: Path
    isolated: bool
    python: Path  # the interpreter the sandboxed processes run: the homework environment's (grader.kernel_env)
    owner: tuple[int, int] | None = None  # the host uid and gid the sandbox runs as, when not the grader's

    @property
    def seccomp_file(self) -> Path:
        return self.root / "seccomp.bpf"

    @property
    def data_path(self) -> str:
        return INSIDE_DATA if self.isolated else str(self.dataset)

    @property
    def run_path(self) -> str:
        return INSIDE_RUN if self.isolated else str(self.run_dir)

    @property
    def lib_path(self) -> str:
        return INSIDE_LIB if self.isolated else str(self.lib_dir)

    @property
    def python_path(self) -> str:
        """The interpreter as the sandboxed process calls it: its environment (`python`'s bin/..) is at /grader/env."""
        return f"{INSIDE_ENV}/bin/{self.python.name}" if self.isolated else str(self.python)


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


@functools.cache
def sandbox_owner() -> tuple[int, int] | None:
    """The host uid and gid a sandbox runs as when the grader is root; None when it runs as the grader itself.

    bubblewrap maps the sandbox's uid onto the uid that starts it, so a grader running as root would give the
    sandbox host root's files (and an escape root's rights). As root the grader therefore starts bubblewrap as
    nobody (65534), which needs unprivileged user namespaces; where the host forbids them, it says so once and
    runs the sandbox as before.
    """
    if os.geteuid() != 0:
        return None
    bwrap, tools = bwrap_path(), [shutil.which(name) for name in ("setpriv", "unshare", "mount")]
    if bwrap is None or None in tools:
        _log.warning(
            "grade: warning: the sandbox runs as host root: `setpriv`, `unshare` and `mount` (util-linux) are "
            "needed to run it as nobody; install them, or run the grader as an ordinary user"
        )
        return None
    disable = ["--disable-userns"] if _bwrap_option(bwrap, "--disable-userns") else []
    probe = [*_drop_command(), bwrap, "--unshare-user", *disable, "--ro-bind", "/", "/", "true"]
    try:
        result = subprocess.run(probe, capture_output=True, text=True, timeout=30, check=False)
        why = (result.stderr.strip().splitlines() or [f"exit status {result.returncode}"])[-1]
    except (OSError, subprocess.SubprocessError) as exc:
        result, why = None, str(exc)
    if result is None or result.returncode != 0:
        _log.warning(
            "grade: warning: the sandbox runs as host root, because bubblewrap cannot start as nobody here (%s): "
            "allow unprivileged user namespaces (sysctl user.max_user_namespaces, "
            "kernel.unprivileged_userns_clone or kernel.apparmor_restrict_unprivileged_userns), "
            "or run the grader as an ordinary user",
            why[:200],
        )
        return None
    return NOBODY, NOBODY


def _drop_command() -> list[str]:
    """Runs the rest of the command as nobody, with no supplementary groups and no capabilities."""
    return ["setpriv", f"--reuid={NOBODY}", f"--regid={NOBODY}", "--clear-groups", "--"]


def prepare_placement(root: Path, dataset: Path, isolated: bool, python: Path) -> Placement:
    """Creates the run, socket and library folders of one execution under `root`, a folder of the grader's own.

    The run and socket folders belong to the sandbox's host uid, mode 700. When the sandbox runs as nobody,
    they sit in `private/`, which only root can open: the sandbox's bubblewrap reaches them (and the Python
    installation, which may be under /root) through bind mounts in `mounts/` made in a mount namespace of its
    own (`wrap_command`), so no other process of uid nobody on the host can reach them.
    """
    owner = sandbox_owner() if isolated else None
    private = root / "private"
    run_dir, socket_dir, lib_dir = private / "run", private / "sock", private / "lib"
    channels_dir = private / "channels"
    for d in (run_dir, socket_dir, lib_dir, channels_dir):
        d.mkdir(parents=True, exist_ok=True)
    # The kernel package is linked, not copied: the sandbox binds its real folder read-only.
    link = lib_dir / KERNEL_PACKAGE
    if not link.exists():
        link.symlink_to(_KERNEL_SOURCE.resolve(), target_is_directory=True)
    os.chmod(private, 0o700)
    for d in (run_dir, socket_dir):
        if owner is not None:
            os.chown(d, *owner)
        os.chmod(d, 0o700)
    if owner is not None:
        os.chmod(root, 0o711)  # passable, not listable: the mount points below must be reachable as nobody
        (root / "mounts").mkdir(exist_ok=True)
        os.chmod(root / "mounts", 0o755)
    placement = Placement(
        root=root,
        run_dir=run_dir,
        socket_dir=socket_dir,
        channels_dir=channels_dir,
        lib_dir=lib_dir,
        dataset=dataset,
        isolated=isolated,
        python=python,
        owner=owner,
    )
    if isolated:
        placement.seccomp_file.write_bytes(filter_program())
    return placement


def hand_to_sandbox(path: Path, placement: Placement) -> None:
    """Gives a file the grader wrote for the sandbox (the kernel's connection file) to the sandbox's uid."""
    if placement.owner is not None:
        os.chown(path, *placement.owner, follow_symlinks=False)


def kernel_environment(threads: int, placement: Placement) -> dict[str, str]:
    """The environment of a sandboxed process: nothing of the grader's own, threads pinned to its share."""
    n = str(max(1, threads))
    return {
        "PATH": f"{Path(placement.python_path).parent}:/usr/local/bin:/usr/bin:/bin",
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


# The descriptor on which bubblewrap reads the seccomp filter (opened by the launcher script).
_SECCOMP_FD = 3


@dataclass(frozen=True, slots=True)
class _Bind:
    """A host path the grader shows the sandbox."""

    source: Path
    dest: str
    writable: bool = False


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
        bwrap,
        "--unshare-all",
        "--unshare-user",
        "--uid",
        str(NOBODY),
        "--gid",
        str(NOBODY),
        "--die-with-parent",
        "--new-session",
        "--cap-drop",
        "ALL",
        "--clearenv",
        "--seccomp",
        str(_SECCOMP_FD),
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
    ]
    # After the scratch mounts, so that an interpreter installed under /tmp is not hidden by them. The interpreter's
    # virtual environment goes to /grader/env (where it is on the host, in the grader's cache, is not the sandbox's
    # business), the installation it is made from (the grader's own base Python) to its own path, which the
    # environment names; the grader's virtual environment, whose packages student code must not import, not at all.
    python = placement.python
    prefixes = sorted({sys.base_prefix, str(python.resolve().parent.parent)})
    binds = [
        _Bind(placement.dataset, INSIDE_DATA),
        _Bind(python.parent.parent, INSIDE_ENV),
        _Bind((placement.lib_dir / KERNEL_PACKAGE).resolve(), f"{INSIDE_LIB}/{KERNEL_PACKAGE}"),
        _Bind(placement.run_dir, INSIDE_RUN, writable=writable_run),
        _Bind(placement.socket_dir, str(placement.socket_dir), writable=True),
        *(_Bind(Path(prefix), prefix) for prefix in prefixes),
    ]
    staged = _staged(binds, placement)
    for bind, source in zip(binds, staged, strict=True):
        cmd += ["--bind" if bind.writable else "--ro-bind", str(source), bind.dest]
    # The grader itself (its bundled rubric and reference solution) is nothing student code may read: where it is
    # installed inside a bound prefix (a system-wide install), an empty folder takes its place.
    if any(_GRADER_PACKAGE.is_relative_to(Path(prefix).resolve()) for prefix in prefixes):
        cmd += ["--tmpfs", str(_GRADER_PACKAGE)]
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
    cmd += ["--", *argv]
    return _launcher(binds, staged, placement) + rlimits + (_drop_command() if placement.owner else []) + cmd


def _staged(binds: list[_Bind], placement: Placement) -> list[Path]:
    """Where bubblewrap finds each bind's source: the source itself, or its mount point when run as nobody."""
    if placement.owner is None:
        return [bind.source for bind in binds]
    return [placement.root / "mounts" / str(i) for i in range(len(binds))]


def _launcher(binds: list[_Bind], staged: list[Path], placement: Placement) -> list[str]:
    """A root-run prefix that opens the seccomp filter for bubblewrap, and mounts what nobody may not reach.

    As nobody, bubblewrap could not open the run's private folders, nor an interpreter under /root. The
    launcher, still root, binds each source onto its mount point in `mounts/` inside a mount namespace of
    its own, so the mounts exist only for this sandbox; on the host the mount points stay empty.
    """
    lines = ["set -e"]
    for bind, point in zip(binds, staged, strict=True):
        if point == bind.source:
            continue
        target = shlex.quote(str(point))
        lines.append(f"mkdir -p {target}" if bind.source.is_dir() else f"[ -e {target} ] || : > {target}")
        lines.append(f"mount --bind {shlex.quote(str(bind.source))} {target}")
    lines += [f"exec {_SECCOMP_FD}< {shlex.quote(str(placement.seccomp_file))}", 'exec "$@"']
    shell = ["/bin/sh", "-c", "\n".join(lines), "sh"]
    return (["unshare", "--mount", "--propagation", "private", "--"] if placement.owner else []) + shell


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
# Student-written folders are opened one level at a time from their parent's descriptor, never following a
# link, so neither depth nor paths longer than PATH_MAX nor links out of the tree matter.
_FOLDER_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
# A walk keeps at most this many folders open; shallower ones are reopened by name (and checked) when needed.
_OPEN_FOLDERS = 64


@dataclass(slots=True)
class _Folder:
    """One folder on a walk's path: how to reach it from its parent, and which subfolders are still to visit."""

    name: str
    identity: tuple[int, int]
    fd: int | None
    subfolders: list[str]


def _identity(fd: int) -> tuple[int, int]:
    info = os.fstat(fd)
    return info.st_dev, info.st_ino


def _survey(fd: int) -> tuple[int, list[str]]:
    """The disk cost of a folder's entries, and the names of its subfolders (links are entries, not folders)."""
    total, subfolders = 0, []
    try:
        with os.scandir(fd) as entries:
            for entry in entries:
                with contextlib.suppress(OSError):  # gone since listed
                    total += entry.stat(follow_symlinks=False).st_size + _ENTRY_BYTES
                    if entry.is_dir(follow_symlinks=False):
                        subfolders.append(entry.name)
    except OSError:
        pass
    return total, subfolders


def _close(fd: int | None) -> None:
    if fd is not None:
        with contextlib.suppress(OSError):
            os.close(fd)


def _reopen(path: list[_Folder]) -> int | None:
    """The descriptor of the last folder of `path`, reopened by name from its nearest open ancestor.

    A folder that is no longer the one first seen (the kernel renamed or replaced it meanwhile) ends the path
    there: its subtree is skipped, never mistaken for another.
    """
    start = max(i for i, folder in enumerate(path) if folder.fd is not None)
    for i in range(start + 1, len(path)):
        parent = path[i - 1].fd
        assert parent is not None
        try:
            fd = os.open(path[i].name, _FOLDER_FLAGS, dir_fd=parent)
        except OSError:
            fd = None
        if fd is None or _identity(fd) != path[i].identity:
            _close(fd)
            for folder in path[i:]:
                _close(folder.fd)
            del path[i:]
            return None
        path[i].fd = fd
        if 0 < i - 1 < len(path) - _OPEN_FOLDERS:
            _close(path[i - 1].fd)
            path[i - 1].fd = None
    return path[-1].fd


def directory_bytes(path: Path) -> int:
    """What `path` costs the host's disk, as the scratch limit counts it: bytes plus `_ENTRY_BYTES` per entry.

    Iterative, depth-first, with at most `_OPEN_FOLDERS` descriptors open, whatever the tree's depth.
    """
    try:
        root = os.open(path, _FOLDER_FLAGS)
    except OSError:
        return 0
    total, subfolders = _survey(root)
    stack = [_Folder("", _identity(root), root, subfolders)]
    try:
        while stack:
            top = stack[-1]
            if not top.subfolders:
                _close(stack.pop().fd)
                continue
            name = top.subfolders.pop()
            parent = top.fd if top.fd is not None else _reopen(stack)
            if parent is None:
                continue
            try:
                fd = os.open(name, _FOLDER_FLAGS, dir_fd=parent)
            except OSError:  # gone, or replaced by a link since listed
                continue
            size, subfolders = _survey(fd)
            total += size
            stack.append(_Folder(name, _identity(fd), fd, subfolders))
            if len(stack) > _OPEN_FOLDERS + 1:
                # The root stays open; folders that leave the window of recent ones are closed.
                leaving = stack[len(stack) - _OPEN_FOLDERS - 1]
                _close(leaving.fd)
                leaving.fd = None
    finally:
        for folder in stack:
            _close(folder.fd)
    return total


def _open_for_removal(name: str, parent: int) -> int:
    """A student's folder opened for removal, after giving it back owner rights if it was made unreadable."""
    try:
        fd = os.open(name, _FOLDER_FLAGS, dir_fd=parent)
    except PermissionError:
        # A folder of mode 000 (only a grader that is not root meets it): chmod it through an O_PATH handle,
        # which cannot be a link that was swapped in, then open it.
        handle = os.open(name, os.O_PATH | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=parent)
        try:
            os.chmod(f"/proc/self/fd/{handle}", 0o700)
        finally:
            os.close(handle)
        fd = os.open(name, _FOLDER_FLAGS, dir_fd=parent)
    if os.fstat(fd).st_mode & 0o700 != 0o700:
        with contextlib.suppress(OSError):  # root needs no rights; others must be able to unlink in it
            os.fchmod(fd, 0o700)
    return fd


def _empty_folder(fd: int, top: int, queue: list[str]) -> list[str]:
    """Unlinks the files, links, FIFOs and sockets in folder `fd`, and moves its subfolders up into `top`.

    Moving each subfolder up to the top folder flattens any depth of tree without recursion, with two
    descriptors open at a time. Returns what could not be removed.
    """
    failures = []
    with os.scandir(fd) as entries:
        names = [(entry.name, entry.is_dir(follow_symlinks=False)) for entry in entries]
    for name, is_folder in names:
        try:
            if not is_folder:
                os.unlink(name, dir_fd=fd)
            elif fd != top:
                moved = f".grader-removing-{uuid.uuid4().hex}"
                os.rename(name, moved, src_dir_fd=fd, dst_dir_fd=top)
                queue.append(moved)
            else:
                queue.append(name)
        except FileNotFoundError:
            continue
        except OSError as exc:
            failures.append(f"{name}: {exc.strerror}")
    return failures


def remove_tree(path: Path) -> list[str]:
    """Removes `path` and everything in it, never following a link, whatever the tree's depth or modes.

    The folders the kernel wrote are the student's: any depth, modes of 000, FIFOs, links to anywhere.
    Never raises; returns what could not be removed (empty when all is gone).
    """
    try:
        parent = os.open(path.parent, _FOLDER_FLAGS)
    except OSError as exc:
        return [] if isinstance(exc, FileNotFoundError) else [f"{path.parent}: {exc.strerror}"]
    failures: list[str] = []
    try:
        try:
            top = _open_for_removal(path.name, parent)
        except FileNotFoundError:
            return []
        except OSError:  # not a folder (or a link to one): the entry itself goes
            with contextlib.suppress(FileNotFoundError):
                os.unlink(path.name, dir_fd=parent)
            return []
        try:
            queue: list[str] = []
            failures += _empty_folder(top, top, queue)
            while queue:
                name = queue.pop()
                try:
                    fd = _open_for_removal(name, top)
                except OSError as exc:
                    failures.append(f"{name}: {exc.strerror}")
                    continue
                try:
                    failures += _empty_folder(fd, top, queue)
                finally:
                    os.close(fd)
                try:
                    os.rmdir(name, dir_fd=top)
                except OSError as exc:
                    failures.append(f"{name}: {exc.strerror}")
        finally:
            os.close(top)
        os.rmdir(path.name, dir_fd=parent)
    except OSError as exc:
        failures.append(f"{path}: {exc.strerror}")
    finally:
        os.close(parent)
    return failures


# A run folder's name carries its grader's pid, so that the folders of a grader that was killed (SIGKILL, or a
# SIGTERM, which runs no clean-up) can be told from those of graders still running.
_RUN_PREFIX = "mnist-grader-run-"


@functools.cache
def _sweep_stale_run_folders(parent: Path) -> None:
    """Removes the run folders that killed graders left in `parent` (once per grader and folder)."""
    for entry in parent.glob(f"{_RUN_PREFIX}*"):
        owner = entry.name[len(_RUN_PREFIX) :].split("-", 1)[0]
        if not owner.isdigit() or int(owner) == os.getpid() or Path(f"/proc/{owner}").exists():
            continue
        with contextlib.suppress(OSError):
            info = entry.lstat()
            if stat.S_ISDIR(info.st_mode) and info.st_uid == os.geteuid():
                remove_tree(entry)


@contextlib.contextmanager
def run_folder() -> Iterator[Path]:
    """A fresh host folder for one run's files, removed afterwards whatever the sandbox left in it.

    Removal never raises: a notebook's leftovers must not end the batch. What cannot be removed is logged.
    """
    # When the sandbox runs as nobody, its bubblewrap reaches the run through mount points in this folder,
    # so the folder's parents must be passable by everyone (as /tmp is); a $TMPDIR that is not gives way to /tmp.
    parent = Path(tempfile.gettempdir())
    passable = all(os.stat(p).st_mode & stat.S_IXOTH for p in (parent, *parent.parents))
    folder = parent if passable else Path("/tmp")
    _sweep_stale_run_folders(folder)
    root = Path(tempfile.mkdtemp(prefix=f"{_RUN_PREFIX}{os.getpid()}-", dir=folder))
    try:
        yield root
    finally:
        left = remove_tree(root)
        if left:
            _log.warning("could not remove all of %s: %s", root, "; ".join(left[:5]))


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
