"""Takes an uploaded notebook in: checks its name, size and content (the same strict reader as `grade`), and
stores it durably (written, fsynced, renamed, folder fsynced) before the upload is acknowledged."""

from __future__ import annotations

import contextlib
import os
import uuid
from dataclasses import dataclass
from pathlib import Path

from grader.execution.notebook import NotebookUnreadable, read_notebook

MAX_FILENAME = 200


class UploadRefused(Exception):
    """The upload cannot be accepted; the message says why, for the student, and `status` is the HTTP code."""

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.status = status


@dataclass(frozen=True, slots=True)
class StoredNotebook:
    filename: str  # the student's name for it
    stored: str  # its name under the uploads folder


def check_filename(filename: str | None) -> str:
    """The student's file name if it names a notebook, else UploadRefused saying what is wrong with it."""
    if not filename:
        raise UploadRefused("the upload has no file name; choose your .ipynb notebook")
    if any(ch in filename for ch in "/\\\x00") or any(ord(ch) < 32 for ch in filename):
        raise UploadRefused("the file name holds a path separator or a control character; rename it, e.g. hw.ipynb")
    if len(filename) > MAX_FILENAME:
        raise UploadRefused(f"the file name is longer than {MAX_FILENAME} characters; give it a shorter one")
    if not filename.lower().endswith(".ipynb"):
        raise UploadRefused(f"{filename!r} is not a notebook: upload the .ipynb file (not a zip, PDF or .py)")
    return filename


def _fsync_folder(folder: Path) -> None:
    fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def store_notebook(folder: Path, filename: str, content: bytes, max_bytes: int) -> StoredNotebook:
    """Checks `content` with `grade`'s notebook reader (a notebook over the rubric's `notebook_mb` is refused as
    `grade` refuses it) and stores it on disk for good; UploadRefused if not."""
    filename = check_filename(filename)
    folder.mkdir(parents=True, exist_ok=True)
    stored = f"{uuid.uuid4().hex}.ipynb"
    partial = folder / f".{stored}.part"
    try:
        with partial.open("xb") as fh:
            fh.write(content)
            fh.flush()
            os.fsync(fh.fileno())
        try:
            read_notebook(partial, max_bytes)
        except NotebookUnreadable as exc:
            raise UploadRefused(f"{filename}: {exc}") from None
        partial.rename(folder / stored)
        _fsync_folder(folder)
    finally:
        with contextlib.suppress(FileNotFoundError):
            partial.unlink()
    return StoredNotebook(filename, stored)


def discard(folder: Path, stored: StoredNotebook) -> None:
    """Removes a stored notebook whose submission was then refused (a limit reached meanwhile)."""
    with contextlib.suppress(FileNotFoundError):
        (folder / stored.stored).unlink()
