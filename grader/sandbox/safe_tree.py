"""Measuring and removing the host folders a hostile kernel wrote, following no link, whatever their depth."""

from __future__ import annotations

import contextlib
import functools
import logging
import os
import stat
import tempfile
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from grader.sandbox.limits import ENTRY_BYTES

_log = logging.getLogger(__name__)
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
                    total += entry.stat(follow_symlinks=False).st_size + ENTRY_BYTES
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
    """What `path` costs the host's disk, as the scratch limit counts it: bytes plus `ENTRY_BYTES` per entry.

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
