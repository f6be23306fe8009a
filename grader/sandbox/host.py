"""What this host lets the sandbox do: bubblewrap and its options, running it as nobody, mounts of its own."""

from __future__ import annotations

import functools
import logging
import os
import shutil
import subprocess
import tempfile

from grader.errors import GraderError

_log = logging.getLogger(__name__)
# nobody and nogroup: the sandbox's uid inside, and on the host when the grader runs as root.
NOBODY = 65534


class SandboxUnavailable(GraderError):
    """bubblewrap is missing or cannot create namespaces here."""


def bwrap_path() -> str | None:
    return shutil.which("bwrap")


@functools.cache
def bwrap_option(path: str, option: str) -> bool:
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


def _refusal(command: list[str]) -> str | None:
    """Why `command` failed (its last line of errors), or None when it succeeded."""
    try:
        result = subprocess.run(command, capture_output=True, text=True, timeout=30, check=False)
    except (OSError, subprocess.SubprocessError) as exc:
        return str(exc)
    if result.returncode == 0:
        return None
    return (result.stderr.strip().splitlines() or [f"exit status {result.returncode}"])[-1]


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
    disable = ["--disable-userns"] if bwrap_option(bwrap, "--disable-userns") else []
    why = _refusal([*drop_command(), bwrap, "--unshare-user", *disable, "--ro-bind", "/", "/", "true"])
    if why is not None:
        _log.warning(
            "grade: warning: the sandbox runs as host root, because bubblewrap cannot start as nobody here (%s): "
            "allow unprivileged user namespaces (sysctl user.max_user_namespaces, "
            "kernel.unprivileged_userns_clone or kernel.apparmor_restrict_unprivileged_userns), "
            "or run the grader as an ordinary user",
            why[:200],
        )
        return None
    if mount_namespace() is None:  # which said why: nobody could not reach the run's folders
        _log.warning("grade: warning: the sandbox runs as host root, because the grader cannot mount its folders")
        return None
    return NOBODY, NOBODY


def drop_command() -> list[str]:
    """Runs the rest of the command as nobody, with no supplementary groups and no capabilities."""
    return ["setpriv", f"--reuid={NOBODY}", f"--regid={NOBODY}", "--clear-groups", "--"]


@functools.cache
def mount_namespace() -> tuple[str, ...] | None:
    """A command prefix that runs the rest in a mount namespace of its own, where it may mount a tmpfs.

    bubblewrap can cap a tmpfs's size but not its number of files (it has no `nr_inodes`), so the sandbox's
    scratch folders are mounted before bubblewrap starts, in a namespace that only this sandbox sees: as
    root, a mount namespace; otherwise a user namespace too, in which the grader's uid is root. None where the
    host allows neither (said once): bubblewrap then mounts the scratch folders with no cap on their files.
    """
    user = [] if os.geteuid() == 0 else ["--user", "--map-root-user"]
    prefix = ("unshare", *user, "--mount", "--propagation", "private", "--")
    if None in (shutil.which("unshare"), shutil.which("mount")):
        why: str | None = "util-linux's `unshare` and `mount` are not installed"
    else:
        with tempfile.TemporaryDirectory(prefix="mnist-grader-mount-") as point:
            why = _refusal([*prefix, "mount", "-t", "tmpfs", "-o", "size=4096,nr_inodes=16", "tmpfs", point])
    if why is None:
        return prefix
    _log.warning(
        "grade: warning: the sandbox's scratch folders have no cap on their number of files, because the grader "
        "cannot mount them itself here (%s): install util-linux, and allow unprivileged user namespaces "
        "(or run the grader as root)",
        why[:200],
    )
    return None
