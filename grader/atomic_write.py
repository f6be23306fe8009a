"""Writing a file whole or not at all: readers (a browser, an LMS import, a second grader) never see half of it."""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO


@contextlib.contextmanager
def replaced_whole(path: Path, *, mode: int = 0o644, durable: bool = False) -> Iterator[BinaryIO]:
    """A binary file to fill that takes `path`'s place only once the block ends without an exception.

    The temporary file has a name of its own beside `path`, so two writers of the same path never share one;
    `durable` syncs it to disk before the rename (for what must survive a power loss).
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, temp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as fh:
            yield fh
            if durable:
                fh.flush()
                os.fsync(fh.fileno())
        os.chmod(temp, mode)
        os.replace(temp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temp)
        raise


def atomic_write(path: Path, data: bytes | str, *, mode: int = 0o644, durable: bool = False) -> None:
    """Writes `data` (text as UTF-8, line endings as given) to `path` whole or not at all."""
    with replaced_whole(path, mode=mode, durable=durable) as fh:
        fh.write(data.encode("utf-8") if isinstance(data, str) else data)
