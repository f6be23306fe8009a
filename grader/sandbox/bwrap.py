"""The bubblewrap command line: what the sandbox sees, read-only, capped in size and files, or not at all."""

from __future__ import annotations

import os
import shlex
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path

from grader.sandbox.host import NOBODY, bwrap_option, drop_command, mount_namespace, require_bwrap
from grader.sandbox.limits import Limits, inode_cap
from grader.sandbox.placement import (
    INSIDE_DATA,
    INSIDE_ENV,
    INSIDE_HOME,
    INSIDE_LIB,
    INSIDE_RUN,
    KERNEL_PACKAGE,
    Placement,
)

_GRADER_PACKAGE = Path(__file__).resolve().parent.parent
_ETC_ENTRIES = ("ld.so.cache", "ld.so.conf", "ld.so.conf.d", "localtime", "fonts", "passwd", "group")
# The descriptor on which bubblewrap reads the seccomp filter (opened by the launcher script).
_SECCOMP_FD = 3
# /tmp and /dev/shm; the home folder has the rubric's `scratch_mb`.
_SMALL_SCRATCH = 64 << 20


@dataclass(frozen=True, slots=True)
class _Bind:
    """A host path the grader shows the sandbox."""

    source: Path
    dest: str
    writable: bool = False


@dataclass(frozen=True, slots=True)
class _Scratch:
    """A writable tmpfs of the sandbox's own: `size` caps its bytes, `inode_cap(size)` its files and folders."""

    name: str  # its mount point in the run's `mounts/` folder, when the launcher mounts it
    dest: str
    size: int

    def options(self, owner: tuple[int, int]) -> str:
        uid, gid = owner
        return f"size={self.size},nr_inodes={inode_cap(self.size)},mode=0755,uid={uid},gid={gid},nosuid,nodev"


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
    namespace = mount_namespace()
    scratch = [
        _Scratch("shm", "/dev/shm", _SMALL_SCRATCH),
        _Scratch("tmp", "/tmp", _SMALL_SCRATCH),
        _Scratch("home", INSIDE_HOME, limits.scratch_mb << 20),
    ]
    binds = _grader_binds(placement, writable_run)
    staged = _staged(binds, placement)
    cmd = [
        bwrap,
        *_isolation_options(),
        *_system_mounts(),
        *_scratch_mounts(scratch, placement if namespace is not None else None),
        # After the scratch mounts, so that an interpreter installed under /tmp is not hidden by them.
        *(arg for bind, source in zip(binds, staged, strict=True) for arg in _bind_options(bind, source)),
        *_hidden_grader(placement),
        *_sealing_options(bwrap),
        *(arg for key, value in env.items() for arg in ("--setenv", key, value)),
        "--",
        *argv,
    ]
    launcher = _launcher(binds, staged, scratch if namespace is not None else [], placement, namespace)
    return launcher + rlimits + (drop_command() if placement.owner else []) + cmd


def _isolation_options() -> list[str]:
    """Every namespace of its own, uid nobody, no capabilities, no environment, the seccomp filter."""
    return [
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
    ]


def _system_mounts() -> list[str]:
    """/usr, the /bin and /lib links, the few /etc files Python needs, all read-only; /proc and /dev."""
    cmd = ["--ro-bind", "/usr", "/usr"]
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
    return [*cmd, "--proc", "/proc", "--dev", "/dev"]


def _scratch_mounts(scratch: list[_Scratch], mounted: Placement | None) -> list[str]:
    """The writable scratch folders: the tmpfs the launcher mounted in `mounted`'s run, else bubblewrap's own
    tmpfs, which has a size but no cap on its files (bubblewrap has no option for one)."""
    if mounted is None:
        return [arg for s in scratch for arg in ("--size", str(s.size), "--tmpfs", s.dest)]
    return [arg for s in scratch for arg in ("--bind", str(mounted.mounts_dir / s.name), s.dest)]


def _prefixes(python: Path) -> list[str]:
    """The Python installations an interpreter needs: the grader's base Python and the one `python` is made from."""
    return sorted({sys.base_prefix, str(python.resolve().parent.parent)})


def _grader_binds(placement: Placement, writable_run: bool) -> list[_Bind]:
    """The dataset, the interpreter, the probe package, the run and socket folders, the Python installations.

    The interpreter's virtual environment goes to /grader/env (where it is on the host, in the grader's cache, is
    not the sandbox's business), the installation it is made from (the grader's own base Python) to its own path,
    which the environment names; the grader's virtual environment, whose packages student code must not import,
    not at all.
    """
    python = placement.python
    return [
        _Bind(placement.dataset, INSIDE_DATA),
        _Bind(python.parent.parent, INSIDE_ENV),
        _Bind((placement.lib_dir / KERNEL_PACKAGE).resolve(), f"{INSIDE_LIB}/{KERNEL_PACKAGE}"),
        _Bind(placement.run_dir, INSIDE_RUN, writable=writable_run),
        _Bind(placement.socket_dir, str(placement.socket_dir), writable=True),
        *(_Bind(Path(prefix), prefix) for prefix in _prefixes(python)),
    ]


def _bind_options(bind: _Bind, source: Path) -> list[str]:
    return ["--bind" if bind.writable else "--ro-bind", str(source), bind.dest]


def _hidden_grader(placement: Placement) -> list[str]:
    """The grader itself (its bundled rubric and reference solution) is nothing student code may read: where it
    is installed inside a bound prefix (a system-wide install), an empty read-only folder takes its place."""
    if any(_GRADER_PACKAGE.is_relative_to(Path(prefix).resolve()) for prefix in _prefixes(placement.python)):
        return ["--size", "4096", "--tmpfs", str(_GRADER_PACKAGE), "--remount-ro", str(_GRADER_PACKAGE)]
    return []


def _sealing_options(bwrap: str) -> list[str]:
    """The sandbox's root and /dev made read-only, its working folder, and no user namespaces of its own."""
    # The sandbox's root and /dev are memory that no size limit covers: after the mounts above are made,
    # nothing but the size-limited scratch folders, the run folder and the sockets is writable.
    cmd = ["--remount-ro", "/dev", "--remount-ro", "/", "--chdir", INSIDE_HOME]
    if bwrap_option(bwrap, "--disable-userns"):
        # A user namespace of its own would give the student's code root's powers over new mounts and
        # more of the host kernel's attack surface; nothing a notebook needs.
        cmd.append("--disable-userns")
    return cmd


def _staged(binds: list[_Bind], placement: Placement) -> list[Path]:
    """Where bubblewrap finds each bind's source: the source itself, or its mount point when run as nobody."""
    if placement.owner is None:
        return [bind.source for bind in binds]
    return [placement.mounts_dir / str(i) for i in range(len(binds))]


def _launcher(
    binds: list[_Bind],
    staged: list[Path],
    scratch: list[_Scratch],
    placement: Placement,
    namespace: tuple[str, ...] | None,
) -> list[str]:
    """A prefix that mounts what bubblewrap cannot (or, as nobody, may not reach), and opens the seccomp filter.

    As nobody, bubblewrap could not open the run's private folders, nor an interpreter under /root: the
    launcher, still root, binds each source onto its mount point in `mounts/`. It mounts the scratch folders
    there too, with their caps on files. All of it happens in a mount namespace of the launcher's own
    (`namespace`), so the mounts exist only for this sandbox; on the host the mount points stay empty.
    """
    mounts = []
    for bind, point in zip(binds, staged, strict=True):
        if point == bind.source:
            continue
        target = shlex.quote(str(point))
        mounts.append(f"mkdir -p {target}" if bind.source.is_dir() else f"[ -e {target} ] || : > {target}")
        mounts.append(f"mount --bind {shlex.quote(str(bind.source))} {target}")
    for s in scratch:
        target = shlex.quote(str(placement.mounts_dir / s.name))
        mounts += [f"mkdir -p {target}", f"mount -t tmpfs -o {s.options(placement.owner or (0, 0))} tmpfs {target}"]
    lines = ["set -e", *mounts, f"exec {_SECCOMP_FD}< {shlex.quote(str(placement.seccomp_file))}", 'exec "$@"']
    shell = ["/bin/sh", "-c", "\n".join(lines), "sh"]
    if not mounts:
        return shell
    # Mounts are made only where there is a namespace for them: `sandbox_owner` runs the sandbox as nobody
    # only then, and `wrap_command` mounts scratch folders only then. Made on the host, they would outlive it.
    assert namespace is not None
    return [*namespace, *shell]
