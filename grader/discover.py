"""Finds the submissions to grade: in a folder, one notebook, or an LMS download zip (Canvas, Moodle, plain).

Naming rules, tried in this order for each notebook:

- Canvas "Download Submissions": `<name>[_LATE]_<user id>_<submission id>_<original name>[-N].ipynb`.
  The student is the Canvas user id, `<name>` is shown in the reports, `_LATE` marks a late submission.
  Of several files from one user, the newest resubmission is graded (highest submission id, then highest
  `-N`, which Canvas adds when a file of the same name is uploaded again); the others are listed as ignored.
- Moodle's assignment download: one folder per submission, `Full Name_<id>_assignsubmission_file_`.
- Anything else: the file name without `.ipynb`, or the folder's name when a folder holds one notebook.

Only regular files are graded, and the walk follows no link. A `*.ipynb` entry that is a link, a named pipe
or anything else but a regular file still becomes a submission, so its own report says why it earned
nothing; every other file that is not graded is listed with the reason.
"""

from __future__ import annotations

import os
import re
import stat
import tempfile
import unicodedata
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path

from grader.archive import ZIP_BOUNDS, Ignored, ZipBounds, extract_notebooks
from grader.errors import GraderError

CANVAS_NAME = re.compile(r"^(?P<name>.+?)(?P<late>_LATE)?_(?P<user>\d+)_(?P<submission>\d+)_(?P<original>.+)$")
MOODLE_FOLDER = re.compile(r"^(?P<name>.+)_(?P<id>\d+)_assignsubmission_file_?$")
_RESUBMISSION = re.compile(r"-(\d+)$")


@dataclass(frozen=True, slots=True)
class Origin:
    """Where a submission came from, as the reports and exports show it."""

    name: str = ""  # the student's name as the LMS gives it; "" when the file name is all there is
    lms: str = ""  # "canvas", "moodle", or "" for a plain folder
    lms_id: str = ""  # the LMS's own id of the student (Canvas user id, Moodle participant id)
    late: bool = False
    superseded: tuple[str, ...] = ()  # this student's other files, not graded (older resubmissions)


@dataclass(frozen=True, slots=True)
class Submission:
    student: str
    path: Path
    note: str = ""  # e.g. a duplicate id, shown in the student's report
    origin: Origin = field(default_factory=Origin)


@dataclass(frozen=True, slots=True)
class Discovery:
    """The submissions to grade, and every other file found, with the reason it is not graded."""

    submissions: list[Submission]
    ignored: list[Ignored]


@dataclass(frozen=True, slots=True)
class _Candidate:
    path: Path
    shown: str  # relative to the submissions root
    origin: Origin
    student: str
    rank: tuple[int, int, str] = (0, 0, "")  # Canvas: newest resubmission last


@contextmanager
def open_submissions(root: Path, bounds: ZipBounds = ZIP_BOUNDS) -> Iterator[Discovery]:
    """The submissions under `root`, a folder, a notebook or a zip; a zip is extracted for the duration."""
    if root.suffix.lower() == ".zip" and root.is_file():
        with tempfile.TemporaryDirectory(prefix="mnist-grader-zip-") as tmp:
            extracted = Path(tmp)
            skipped = extract_notebooks(root, extracted, bounds)
            found = discover(extracted, empty_ok=True)
            if not found.submissions:
                raise GraderError(f"{root}: no notebooks (.ipynb files) in this zip")
            yield Discovery(found.submissions, skipped + found.ignored)
        return
    yield discover(root)


def discover(root: Path, *, empty_ok: bool = False) -> Discovery:
    """The notebooks under `root` (or `root` itself), named by the rules in this module's docstring."""
    if not os.path.lexists(root):
        raise GraderError(f"{root}: no such file or folder")
    if root.is_dir():
        paths, ignored = _walk(root)
    elif root.suffix == ".ipynb":
        # The one file named on the command line is the teacher's choice: a link to it is followed.
        paths, ignored = [Path(os.path.realpath(root)) if root.is_symlink() else root], []
    else:
        raise GraderError(f"{root}: not a notebook (expected a .ipynb file, a folder of them, or an LMS zip)")
    if not paths and not empty_ok:
        raise GraderError(f"{root}: no notebooks (.ipynb files) found")
    base = root if root.is_dir() else paths[0].parent
    per_folder: dict[Path, int] = {}
    for p in paths:
        per_folder[p.parent] = per_folder.get(p.parent, 0) + 1
    candidates = [_candidate(p, base, per_folder[p.parent] == 1 and p.parent != base) for p in paths]
    chosen, superseded = _newest_per_student(candidates)
    ignored += superseded
    return Discovery(_with_duplicate_notes(chosen), ignored)


def _walk(root: Path) -> tuple[list[Path], list[Ignored]]:
    """Every `*.ipynb` entry below `root` whatever its type, and the other files; iterative, no links followed."""
    notebooks: list[Path] = []
    ignored: list[Ignored] = []
    folders = [root]
    while folders:
        folder = folders.pop()
        try:
            entries = list(os.scandir(folder))
        except OSError as exc:
            ignored.append(Ignored(str(folder.relative_to(root)), f"cannot be listed: {exc.strerror}"))
            continue
        for entry in entries:
            path = Path(entry.path)
            shown = str(path.relative_to(root))
            # Hidden files and folders: Jupyter's checkpoints, macOS's `._` forks and `.DS_Store`.
            if entry.name.startswith(".") or entry.name == "__MACOSX":
                continue
            if entry.name.endswith(".ipynb"):
                notebooks.append(path)  # a link or a pipe too: its report says why it earned nothing
            elif entry.is_symlink():
                ignored.append(Ignored(shown, "a symbolic link (links are not followed)"))
            elif entry.is_dir(follow_symlinks=False):
                folders.append(path)
            elif entry.name.lower().endswith(".zip"):
                ignored.append(Ignored(shown, "a zip inside the folder: grade it on its own (`grade FILE.zip`)"))
            else:
                ignored.append(Ignored(shown, _not_notebook(entry)))
    return sorted(notebooks), sorted(ignored, key=lambda i: i.path)


def _not_notebook(entry: os.DirEntry[str]) -> str:
    try:
        mode = entry.stat(follow_symlinks=False).st_mode
    except OSError:
        return "not a notebook"
    return "not a notebook" if stat.S_ISREG(mode) else "not a notebook, nor a regular file"


def _nfc(text: str) -> str:
    return unicodedata.normalize("NFC", text)


def _candidate(path: Path, base: Path, own_folder: bool) -> _Candidate:
    shown = str(path.relative_to(base))
    canvas = CANVAS_NAME.match(_nfc(path.stem))
    if canvas:
        original = canvas["original"]
        again = _RESUBMISSION.search(original)
        origin = Origin(name=canvas["name"], lms="canvas", lms_id=canvas["user"], late=canvas["late"] is not None)
        rank = (int(canvas["submission"]), int(again[1]) if again else 0, path.name)
        return _Candidate(path, shown, origin, canvas["user"], rank)
    folders = path.relative_to(base).parts[:-1]
    moodle = next((m for part in reversed(folders) if (m := MOODLE_FOLDER.match(_nfc(part)))), None)
    if moodle:
        return _Candidate(path, shown, Origin(name=moodle["name"], lms="moodle", lms_id=moodle["id"]), moodle["id"])
    return _Candidate(path, shown, Origin(), _nfc(path.parent.name if own_folder else path.stem))


def _newest_per_student(candidates: list[_Candidate]) -> tuple[list[_Candidate], list[Ignored]]:
    """Canvas files grouped by user: the newest graded, the others listed. Other candidates pass through."""
    by_user: dict[str, list[_Candidate]] = {}
    for c in candidates:
        if c.origin.lms == "canvas":
            by_user.setdefault(c.student, []).append(c)
    chosen: list[_Candidate] = []
    ignored: list[Ignored] = []
    newest = {user: max(group, key=lambda c: c.rank) for user, group in by_user.items()}
    for c in candidates:
        if c.origin.lms != "canvas":
            chosen.append(c)
        elif c is newest[c.student]:
            older = tuple(o.shown for o in by_user[c.student] if o is not c)
            chosen.append(replace(c, origin=replace(c.origin, superseded=older)))
        else:
            ignored.append(
                Ignored(
                    c.shown,
                    f"an older submission of {c.origin.name} ({c.student}); {newest[c.student].shown} is graded",
                )
            )
    return chosen, ignored


def _with_duplicate_notes(candidates: list[_Candidate]) -> list[Submission]:
    """Submissions in discovery order; a repeated id is graded too, as `id (2)`, and both reports say so."""
    seen: dict[str, int] = {}  # student id -> index in `submissions`
    shown: dict[str, str] = {}
    submissions: list[Submission] = []
    for c in candidates:
        student = c.student
        note = ""
        if student in seen:
            # Both reports say so, each naming the other file, so the teacher can tell who is who.
            first = submissions[seen[student]]
            n = 2
            while f"{student} ({n})" in seen:
                n += 1
            note = f"Duplicate student id {student!r}: also submitted as {shown[first.student]}; both were graded."
            if not first.note:
                submissions[seen[student]] = replace(
                    first, note=f"Duplicate student id {student!r}: also submitted as {c.shown}; both were graded."
                )
            student = f"{student} ({n})"
        seen[student] = len(submissions)
        shown[student] = c.shown
        submissions.append(Submission(student, c.path, note, c.origin))
    return submissions
