"""Finds the submissions to grade: in a folder, one notebook, or an LMS download zip (Canvas, Moodle, D2L, plain).

Naming rules: the outermost part of a notebook's path (relative to the download) that an LMS named decides
whose it is, so that a folder a student made inside their own submission can never claim another student.

- Canvas "Download Submissions": `<name>[_LATE]_<user id>_<submission id>_<original name>[-N].ipynb`.
  The student is the Canvas user id, `<name>` is shown in the reports, `_LATE` marks a late submission.
  Of several files from one user, the newest resubmission is graded (highest submission id, then highest
  `-N`, which Canvas adds when a file of the same name is uploaded again); the others are listed as ignored.
- Moodle's assignment download: one folder per submission, `Full Name_<id>_assignsubmission_file_`, at the
  top of the download; whatever a submission's own files contain is that student's.
- D2L Brightspace's "Download" of an assignment's submissions: one folder per submission,
  `<n>-<m> - <First Last> - <Mon D, YYYY HMM AM>/<files>`, or flat files
  `<n>-<m> - <First Last> - <Mon D, YYYY HMM AM> - <file>`. The student is the name (D2L's download carries
  no user id; `--roster` with D2L's grades export gives it); `<n>-<m>` are D2L's own numbers of the submission
  (see the README: neither is the student). Of several submissions by one name, the newest by its time stamp
  is graded, the others are listed as ignored. The time stamp is the LMS's local time, read in the zone given.
- Anything else: the file name without `.ipynb`, or the folder's name when a folder holds one notebook.

Only regular files are graded, and the walk follows no link. A `*.ipynb` entry that is a link, a named pipe
or anything else but a regular file still becomes a submission, so its own report says why it earned
nothing; every other file that is not graded is listed with the reason, hidden ones (`.DS_Store`,
`__MACOSX`, Jupyter's checkpoints) and D2L's `index.html` included.
"""

from __future__ import annotations

import os
import re
import stat
import tempfile
import unicodedata
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, tzinfo
from pathlib import Path, PurePosixPath

from grader.archive import ZIP_BOUNDS, Ignored, ZipBounds, extract_notebooks
from grader.errors import GraderError

CANVAS_NAME = re.compile(r"^(?P<name>.+?)(?P<late>_LATE)?_(?P<user>\d+)_(?P<submission>\d+)_(?P<original>.+)$")
MOODLE_FOLDER = re.compile(r"^(?P<name>.+)_(?P<id>\d+)_assignsubmission_file_?$")
# D2L: the name is the shortest text before a time stamp, so a " - " inside a name or a file name is kept.
D2L_NAME = re.compile(
    r"^(?P<ids>\d+-\d+) - (?P<name>.+?) - (?P<stamp>[A-Za-z]+ \d+, \d+ \d+ [AaPp][Mm])(?: - (?P<file>.+))?$"
)
_D2L_STAMP = re.compile(r"^(?P<month>[A-Z][a-z]{2}) (?P<day>\d{1,2}), (?P<year>\d{4}) (?P<hm>\d{3,4}) (?P<half>[AP]M)$")
_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
_RESUBMISSION = re.compile(r"-(\d+)$")
# Files the LMS or the student's computer adds, never a submission: listed with what they are.
_NOT_SUBMITTED = {
    "__MACOSX": "macOS's copy of file attributes, not a submission",
    ".DS_Store": "macOS's folder settings, not a submission",
    ".ipynb_checkpoints": "Jupyter's checkpoints, not a submission",
    "index.html": "the LMS's index of the download, not a submission",
}


@dataclass(frozen=True, slots=True)
class Origin:
    """Where a submission came from, as the reports and exports show it."""

    name: str = ""  # the student's name as the LMS gives it; "" when the file name is all there is
    lms: str = ""  # "canvas", "moodle", "d2l", or "" for a plain folder
    lms_id: str = ""  # the LMS's own id (Canvas user id, Moodle participant id, D2L's `<n>-<m>` of the submission)
    late: bool = False  # the LMS marked it late (Canvas's `_LATE`)
    superseded: tuple[str, ...] = ()  # this student's other files, not graded (older resubmissions)
    submitted_at: datetime | None = None  # time-zone aware, where the LMS gives the time (D2L)


@dataclass(frozen=True, slots=True)
class Submission:
    student: str
    path: Path
    note: str = ""  # e.g. a duplicate id, shown in the student's report
    origin: Origin = field(default_factory=Origin)
    refused: str = ""  # why the notebook was not extracted (a per-member bound of its zip): never run, status error


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
    rank: tuple[int, int, int, str] = (0, 0, 0, "")  # Canvas, D2L: the newest submission ranks highest
    group: str = ""  # Canvas, D2L: what one student's submissions share (user id; name without case or accents)


@contextmanager
def open_submissions(root: Path, bounds: ZipBounds = ZIP_BOUNDS, zone: tzinfo = UTC) -> Iterator[Discovery]:
    """The submissions under `root`, a folder, a notebook or a zip; a zip is extracted for the duration.

    `zone` is the LMS's time zone, in which D2L's time stamps are read.
    """
    if root.suffix.lower() == ".zip" and root.is_file():
        with tempfile.TemporaryDirectory(prefix="mnist-grader-zip-") as tmp:
            extracted = Path(tmp)
            extraction = extract_notebooks(root, extracted, bounds)
            found = discover(extracted, empty_ok=True, zone=zone, refused=extraction.refused)
            if not found.submissions:
                raise GraderError(f"{root}: no notebooks (.ipynb files) in this zip")
            yield Discovery(found.submissions, extraction.skipped + found.ignored)
        return
    yield discover(root, zone=zone)


def discover(
    root: Path, *, empty_ok: bool = False, zone: tzinfo = UTC, refused: Mapping[PurePosixPath, str] | None = None
) -> Discovery:
    """The notebooks under `root` (or `root` itself), named by the rules in this module's docstring.

    `refused` names notebooks below `root` that a zip held but that were not extracted, and why: each is still
    its student's submission, with status error. Raises GraderError for a D2L time stamp that is no date.
    """
    if not os.path.lexists(root):
        raise GraderError(f"{root}: no such file or folder")
    if root.is_dir():
        paths, ignored = _walk(root)
    elif root.suffix == ".ipynb":
        # The one file named on the command line is the teacher's choice: a link to it is followed.
        paths, ignored = [Path(os.path.realpath(root)) if root.is_symlink() else root], []
    else:
        raise GraderError(f"{root}: not a notebook (expected a .ipynb file, a folder of them, or an LMS zip)")
    refused_paths = {root / name: reason for name, reason in (refused or {}).items()}
    paths = sorted({*paths, *refused_paths})
    if not paths and not empty_ok:
        raise GraderError(f"{root}: no notebooks (.ipynb files) found")
    base = root if root.is_dir() else paths[0].parent
    per_folder: dict[Path, int] = {}
    for p in paths:
        per_folder[p.parent] = per_folder.get(p.parent, 0) + 1
    candidates = [_candidate(p, base, per_folder[p.parent] == 1 and p.parent != base, zone) for p in paths]
    chosen, superseded = _newest_per_student(candidates)
    ignored += superseded
    return Discovery(_with_duplicate_notes(chosen, refused_paths), ignored)


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
            if entry.name in _NOT_SUBMITTED:
                ignored.append(Ignored(shown, _NOT_SUBMITTED[entry.name]))
            elif entry.name.startswith("."):  # macOS's `._` forks, editors' swap files
                ignored.append(Ignored(shown, "a hidden file, not a submission"))
            elif entry.name.endswith(".ipynb"):
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


def name_key(name: str) -> str:
    """A person's name compared as people read it: no case, no accents, single spaces ("José  Díaz" = "jose diaz")."""
    plain = "".join(c for c in unicodedata.normalize("NFKD", name) if not unicodedata.combining(c))
    return " ".join(plain.casefold().split())


def d2l_time(stamp: str, shown: str, zone: tzinfo) -> datetime:
    """D2L's time stamp (`Dec 1, 2026 1100 PM`: hour without a leading zero, minutes, no colon) in `zone`.

    Raises GraderError naming the file for a stamp that is no real date and time.
    """
    parts = _D2L_STAMP.match(stamp)
    if parts is not None and parts["month"] in _MONTHS:
        hour, minute = divmod(int(parts["hm"]), 100)
        if 1 <= hour <= 12 and minute < 60:
            hour = hour % 12 + (12 if parts["half"] == "PM" else 0)
            try:
                month = _MONTHS.index(parts["month"]) + 1
                return datetime(int(parts["year"]), month, int(parts["day"]), hour, minute, tzinfo=zone)
            except ValueError:
                pass
    raise GraderError(
        f"{shown}: D2L time stamp {stamp!r} is not a date and time "
        "(expected like 'Dec 1, 2026 1100 PM'); was the download's file renamed?"
    )


def _candidate(path: Path, base: Path, own_folder: bool, zone: tzinfo) -> _Candidate:
    relative = path.relative_to(base)
    shown = str(relative)
    *folders, file = relative.parts
    # The outermost part an LMS named decides: a student's own folders come below their submission's.
    for folder in folders:
        if moodle := MOODLE_FOLDER.match(_nfc(folder)):
            origin = Origin(name=moodle["name"], lms="moodle", lms_id=moodle["id"])
            return _Candidate(path, shown, origin, moodle["id"])
        if (d2l := D2L_NAME.match(_nfc(folder))) and d2l["file"] is None:
            return _d2l_candidate(d2l, path, shown, zone)
    stem = _nfc(path.stem)
    if (d2l := D2L_NAME.match(stem)) and d2l["file"] is not None:
        return _d2l_candidate(d2l, path, shown, zone)
    if canvas := CANVAS_NAME.match(stem):
        original = canvas["original"]
        again = _RESUBMISSION.search(original)
        origin = Origin(name=canvas["name"], lms="canvas", lms_id=canvas["user"], late=canvas["late"] is not None)
        rank = (int(canvas["submission"]), int(again[1]) if again else 0, 0, path.name)
        return _Candidate(path, shown, origin, canvas["user"], rank, canvas["user"])
    return _Candidate(path, shown, Origin(), _nfc(path.parent.name if own_folder else path.stem))


def _d2l_candidate(parts: re.Match[str], path: Path, shown: str, zone: tzinfo) -> _Candidate:
    submitted = d2l_time(parts["stamp"], shown, zone)
    first, second = (int(n) for n in parts["ids"].split("-"))
    name = " ".join(parts["name"].split())
    origin = Origin(name=name, lms="d2l", lms_id=parts["ids"], submitted_at=submitted)
    # Every file of one submission ranks the same: its time, then D2L's numbers for two in one minute.
    rank = (int(submitted.timestamp()), first, second, "")
    return _Candidate(path, shown, origin, name, rank, name_key(name))


def _newest_per_student(candidates: list[_Candidate]) -> tuple[list[_Candidate], list[Ignored]]:
    """Canvas and D2L files grouped by student: the newest submission graded, the others listed. Other
    candidates pass through."""
    by_student: dict[tuple[str, str], list[_Candidate]] = {}
    for c in candidates:
        if c.group:
            by_student.setdefault((c.origin.lms, c.group), []).append(c)
    newest = {key: max(c.rank for c in group) for key, group in by_student.items()}
    chosen: list[_Candidate] = []
    ignored: list[Ignored] = []
    for c in candidates:
        if not c.group:
            chosen.append(c)
            continue
        group = by_student[c.origin.lms, c.group]
        graded = [o for o in group if o.rank == newest[c.origin.lms, c.group]]
        if c in graded:
            older = tuple(o.shown for o in group if o not in graded)
            # The newest submission's name and id stand for the student.
            chosen.append(replace(c, student=graded[0].student, origin=replace(c.origin, superseded=older)))
        else:
            who = f"{c.origin.name} ({c.student})" if c.origin.name != c.student else c.student
            ignored.append(Ignored(c.shown, f"an older submission of {who}; {graded[0].shown} is graded"))
    return chosen, ignored


def _with_duplicate_notes(candidates: list[_Candidate], refused: Mapping[Path, str]) -> list[Submission]:
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
        submissions.append(Submission(student, c.path, note, c.origin, refused.get(c.path, "")))
    return submissions
