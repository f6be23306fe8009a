"""Reads submitted files without trusting what they are: regular files only, no links followed, no blocking open.

A submissions folder is student-controlled. A named pipe called `x.ipynb` would block an ordinary `open()`
forever, and a symbolic link would hand the grader any file on the host (the reference solution, say).
Every read of a submission's bytes goes through `read_regular_file`, which opens without following a link
and without waiting for a writer, then checks what it opened.
"""

from __future__ import annotations

import errno
import os
import stat
from pathlib import Path


class NotRegularFile(OSError):
    """The path is a link, a named pipe, a folder or a device, not a regular file; the message says which."""


def kind_of(mode: int) -> str:
    """What a file of this `st_mode` is, in words a teacher reads in a report."""
    if stat.S_ISLNK(mode):
        return "a symbolic link"
    if stat.S_ISFIFO(mode):
        return "a named pipe (FIFO)"
    if stat.S_ISDIR(mode):
        return "a folder"
    if stat.S_ISSOCK(mode):
        return "a socket"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "a device"
    return "a regular file" if stat.S_ISREG(mode) else "not a regular file"


def not_regular_message(kind: str) -> str:
    return f"the submission is {kind}, not a regular file; only regular files inside the submissions folder are graded"


_GROWTH_READ = 1 << 20  # what is read at a time of a file that grew after it was measured


class FileTooLarge(OSError):
    """The file is larger than the reader accepts."""


def read_regular_file(path: Path, max_bytes: int | None = None) -> bytes:
    """The bytes of `path` if it is a regular file; NotRegularFile (an OSError) for anything else, and
    FileTooLarge when it holds more than `max_bytes`.

    O_NOFOLLOW makes a link fail to open (ELOOP) instead of being followed; O_NONBLOCK makes a FIFO open
    at once instead of waiting for a writer. The fstat that follows judges what was actually opened, so a
    file swapped for a pipe after discovery is caught too.
    """
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise NotRegularFile(errno.ELOOP, not_regular_message("a symbolic link"), str(path)) from None
        raise
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise NotRegularFile(errno.EINVAL, not_regular_message(kind_of(info.st_mode)), str(path))
        if max_bytes is not None and info.st_size > max_bytes:
            raise FileTooLarge(errno.EFBIG, f"larger than {max_bytes} bytes", str(path))
        # A regular file ignores O_NONBLOCK, so the reads below behave as usual. The read is bounded too:
        # the file may grow after the fstat. Each read is sized by what is there, as read(n) allocates n bytes.
        with os.fdopen(fd, "rb", closefd=True) as fh:
            fd = -1
            if max_bytes is None:
                return fh.read()
            data = fh.read(min(max_bytes, info.st_size))
            while len(data) < max_bytes and (more := fh.read(min(_GROWTH_READ, max_bytes - len(data)))):
                data += more
            return data
    finally:
        if fd != -1:
            os.close(fd)
