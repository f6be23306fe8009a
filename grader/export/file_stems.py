"""File-name stems for student ids: ASCII, no separators, unique even on case-insensitive disks."""

from __future__ import annotations

import hashlib
import re
import unicodedata
from collections.abc import Iterable

_WINDOWS_RESERVED = {"CON", "PRN", "AUX", "NUL", *(f"COM{i}" for i in range(10)), *(f"LPT{i}" for i in range(10))}


def file_stems(students: Iterable[str]) -> dict[str, str]:
    """A file-name stem for each student id: ASCII, no separators, unique even on case-insensitive disks.

    Ids come from students' file names, so they may hold spaces, accents, dots or path separators.
    A stem that had to change, or that would clash, carries a short hash of the id to stay unique.
    """
    stems: dict[str, str] = {}
    taken: set[str] = set()
    for student in students:
        if student in stems:
            continue
        ascii_text = unicodedata.normalize("NFKD", student).encode("ascii", "ignore").decode("ascii")
        stem = re.sub(r"[^A-Za-z0-9_-]+", "_", ascii_text).strip("_")[:60] or "student"
        if stem != student or stem.upper() in _WINDOWS_RESERVED or stem.casefold() in taken:
            stem = f"{stem}-{hashlib.sha256(student.encode('utf-8')).hexdigest()[:8]}"
        while stem.casefold() in taken:  # a hash clash: practically never, but names must stay unique
            stem += "_"
        taken.add(stem.casefold())
        stems[student] = stem
    return stems
