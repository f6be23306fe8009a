"""Extracts the notebooks of an LMS download zip safely: no path escapes, no links, bounded size and count.

The zip comes from an LMS but its member names and contents come from students, so nothing in it is
trusted. Only `.ipynb` members are written, each to a fresh file below the extraction folder, and their
bytes are counted as they are inflated (the sizes a zip declares can lie). Everything else, and every
member that is unsafe, is skipped and listed with the reason, so the teacher sees what was not graded.

A notebook that breaks a bound on one member (its size, how much it inflates, data that cannot be read) costs
that member only: it is refused, and discovery makes it its student's submission with status `error` and
the reason. Only the bounds on the whole archive (its member count, all notebooks together) refuse the zip.
"""

from __future__ import annotations

import os
import stat
import unicodedata
import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from grader.errors import GraderError

_CHUNK = 1 << 20


class ArchiveError(GraderError):
    """The zip cannot be read, or is over a whole-archive bound; the message names the zip and the bound."""


class MemberRefused(Exception):
    """One notebook of the zip breaks a per-member bound or cannot be inflated; the message says which and why."""


@dataclass(frozen=True, slots=True)
class ZipBounds:
    """What the grader will inflate from one zip. A 300-student class with resubmissions is far below these."""

    max_members: int = 20_000
    max_total_bytes: int = 4 << 30  # notebooks written, all together
    max_member_bytes: int = 256 << 20  # one notebook
    max_ratio: int = 200  # inflated / compressed size of one member above 1 MB: text compresses ~10x


ZIP_BOUNDS = ZipBounds()


@dataclass(frozen=True, slots=True)
class Ignored:
    """A file that was not graded (a zip member not extracted, a file that is no notebook), and why.

    The class summary and grades.json list these, so the teacher sees everything that was left out.
    """

    path: str  # as the teacher knows it: relative to the submissions folder, or the zip member's name
    reason: str


@dataclass(frozen=True, slots=True)
class Extraction:
    """What came out of a zip: the members left out, and the notebooks refused (path below `dest` -> reason)."""

    skipped: list[Ignored]
    refused: dict[PurePosixPath, str]


def _safe_name(raw: str) -> PurePosixPath | None:
    """The member's relative path, or None when it is absolute, climbs out with `..`, or is otherwise odd."""
    text = unicodedata.normalize("NFC", raw.replace("\\", "/"))
    if not text or text.startswith("/") or "\0" in text or (len(text) > 1 and text[1] == ":"):
        return None
    parts = [p for p in text.split("/") if p not in ("", ".")]
    if not parts or any(p == ".." for p in parts):
        return None
    return PurePosixPath(*parts)


def _is_link(info: zipfile.ZipInfo) -> bool:
    # Unix zips keep the file mode in the high 16 bits of the external attributes.
    return stat.S_ISLNK(info.external_attr >> 16)


def extract_notebooks(archive: Path, dest: Path, bounds: ZipBounds = ZIP_BOUNDS) -> Extraction:
    """Writes the zip's `.ipynb` members below `dest` (an empty folder); returns the members left out and the
    notebooks refused for a per-member bound (listed among the skipped too).

    Raises ArchiveError when the file is not a readable zip or exceeds a bound on the whole archive (then
    nothing should be graded from it: a partial class is worse than a clear error).
    """
    try:
        zf = zipfile.ZipFile(archive)
    except (OSError, zipfile.BadZipFile) as exc:
        raise ArchiveError(f"{archive}: not a readable zip file ({exc})") from None
    skipped: list[Ignored] = []
    refused: dict[PurePosixPath, str] = {}
    written: set[str] = set()
    total = 0
    with zf:
        members = zf.infolist()
        if len(members) > bounds.max_members:
            raise ArchiveError(
                f"{archive}: {len(members)} members, more than the {bounds.max_members} the grader reads "
                "from one zip; is this the LMS download?"
            )
        for info in members:
            if info.is_dir():
                continue
            name = _safe_name(info.filename)
            if name is None:
                skipped.append(Ignored(info.filename, "its path leads outside the extraction folder"))
            elif _is_link(info):
                skipped.append(Ignored(info.filename, "a symbolic link (links are not followed)"))
            elif name.suffix != ".ipynb" or name.name.startswith(".") or "__MACOSX" in name.parts:
                skipped.append(Ignored(info.filename, "not a notebook"))
            elif info.flag_bits & 0x1:
                skipped.append(Ignored(info.filename, "encrypted"))
            elif str(name) in written:
                skipped.append(Ignored(info.filename, "the zip holds another member of the same name"))
            else:
                try:
                    total += _extract_one(zf, info, dest / name, archive, bounds, bounds.max_total_bytes - total)
                except OSError as exc:  # e.g. a member named like a folder that another member needs
                    skipped.append(Ignored(info.filename, f"cannot be extracted: {exc.strerror}"))
                except MemberRefused as exc:
                    (dest / name).unlink(missing_ok=True)  # what was inflated before the bound is not graded
                    refused[name] = str(exc)
                    skipped.append(Ignored(info.filename, f"not graded: {exc}"))
                written.add(str(name))
    return Extraction(skipped, refused)


def _extract_one(
    zf: zipfile.ZipFile, info: zipfile.ZipInfo, target: Path, archive: Path, bounds: ZipBounds, budget: int
) -> int:
    """Inflates one member into a new file at `target`, counting bytes; returns how many were written.

    Raises MemberRefused for a bound on this member, ArchiveError when the whole archive's `budget` runs out.
    """
    target.parent.mkdir(parents=True, exist_ok=True)
    # O_EXCL|O_NOFOLLOW: a fresh file in a folder only this function writes to; never an existing path.
    fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
    written = 0
    try:
        with os.fdopen(fd, "wb") as out, zf.open(info) as src:
            while chunk := src.read(_CHUNK):
                written += len(chunk)
                if written > budget:
                    raise ArchiveError(
                        f"{archive}: the notebooks inflate past the {bounds.max_total_bytes >> 20} MB allowed for all "
                        "notebooks together (a zip bomb?); nothing was graded"
                    )
                if written > bounds.max_member_bytes:
                    raise MemberRefused(
                        f"it inflates past the {bounds.max_member_bytes >> 20} MB allowed for one notebook"
                    )
                if written > (1 << 20) and written > bounds.max_ratio * max(1, info.compress_size):
                    raise MemberRefused(
                        f"it inflates more than {bounds.max_ratio} times its compressed size (a zip bomb?)"
                    )
                out.write(chunk)
    except (zipfile.BadZipFile, zlib.error, EOFError, NotImplementedError, ValueError) as exc:
        raise MemberRefused(f"its data in the zip cannot be read ({exc})") from None
    return written
