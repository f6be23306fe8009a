"""Grades notebooks as they arrive in a folder (`grade --watch`), keeping the reports and exports current.

Each time the folder changes (watchfiles tells us), the folder is discovered again and the class is
re-graded from the facts cache: only new or changed notebooks start a kernel, only their reports are
re-rendered, and the exports and class summary are rewritten whole. A file is graded only once it has
held still (same size, time and inode) for `QUIET_S` and parses as JSON, so a notebook that an LMS sync
is still writing is never graded half-written; one that stays unparseable for `UNPARSEABLE_GRACE_S` is
graded as it is (its report says it is not a notebook). Ctrl-C ends the watch between two writes.
"""

from __future__ import annotations

import contextlib
import os
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import msgspec
import watchfiles

from grader.discover import Discovery, Submission, discover
from grader.errors import GraderError
from grader.export.file_stems import file_stems
from grader.files import read_regular_file
from grader.isolation import StageGuard
from grader.near_copies import NearCopy
from grader.output_layout import OutputLayout
from grader.pipeline import (
    Options,
    Outcome,
    Round,
    Session,
    default_jobs,
    grade_round,
    read_session_adjustments,
    start_session,
    write_outputs,
)
from grader.progress import Progress
from grader.rubric.load import load_rubric
from grader.score import StudentGrade

QUIET_S = 1.0
UNPARSEABLE_GRACE_S = 30.0
_TICK_MS = 500  # how often the folder is looked at again while a file is waiting to settle

Stamp = tuple[int, int, int, int]  # size, mtime (ns), inode, mode


def stamp_of(path: Path) -> Stamp | None:
    try:
        st = os.lstat(path)
    except OSError:
        return None
    return (st.st_size, st.st_mtime_ns, st.st_ino, st.st_mode)


def parses(path: Path, max_bytes: int | None = None) -> bool:
    """Whether the file is whole enough to grade: JSON that parses (anything but a regular file, or a file over
    `max_bytes`: yes). The JSON is checked without building it, so a hostile file costs its bytes only."""
    try:
        msgspec.json.decode(read_regular_file(path, max_bytes), type=msgspec.Raw)
    except OSError:
        return True  # a link, a pipe, a vanished or too large file: grading reports it as it is
    except (msgspec.DecodeError, RecursionError):
        return False
    return True


@dataclass
class Settling:
    """Which files have held still long enough to be graded, from repeated looks at the folder."""

    quiet_s: float = QUIET_S
    grace_s: float = UNPARSEABLE_GRACE_S
    max_bytes: int | None = None  # the rubric's notebook size limit: a larger file is not read to see if it parses
    seen: dict[Path, tuple[Stamp | None, float]] = field(default_factory=dict)  # stamp, when first seen so
    whole: set[tuple[Path, Stamp | None]] = field(default_factory=set)  # (path, stamp) known to parse

    def ready(self, path: Path, now: float) -> bool:
        stamp = stamp_of(path)
        previous = self.seen.get(path)
        if previous is None and stamp is not None and time.time() - stamp[1] / 1e9 >= self.quiet_s:
            previous = self.seen[path] = (stamp, now - self.quiet_s)  # untouched for a while already
        elif previous is None or previous[0] != stamp:
            self.seen[path] = (stamp, now)
            return False
        still_for = now - previous[1]
        if still_for < self.quiet_s:
            return False
        if (path, stamp) in self.whole:
            return True
        if parses(path, self.max_bytes) or still_for >= self.grace_s:
            self.whole.add((path, stamp))
            return True
        return False


@dataclass
class Watcher:
    """Re-grades the folder when what is ready to grade changes; remembers grades of files still settling."""

    session: Session
    settling: Settling = field(default_factory=Settling)
    graded: dict[Path, StudentGrade] = field(default_factory=dict)  # last grade of each submission's file
    signature: frozenset[tuple[Path, Stamp | None]] | None = None
    pairs: list[NearCopy] = field(default_factory=list)  # near-copies found in the last round
    rounds: int = 0

    def step(self, now: float) -> None:
        """Grades what is ready to grade, if that changed since the last round."""
        found = discover(self.session.options.submissions, empty_ok=True, zone=self.session.zone)
        ready = [s for s in found.submissions if self.settling.ready(s.path, now)]
        waiting = [s for s in found.submissions if s not in ready]
        signature = frozenset((s.path, self.settling.seen[s.path][0]) for s in ready)
        # Nothing new to grade; and the first round waits for the files already there to settle.
        if signature == self.signature or (waiting and not self.rounds):
            return
        self.signature = signature
        self._grade(found, ready, waiting)

    def _grade(self, found: Discovery, ready: list[Submission], waiting: list[Submission]) -> None:
        options = self.session.options
        # Later rounds print only what ran again, not the whole class from the cache.
        progress = Progress(len(ready), options.quiet, options.verbose, show_cached=not self.rounds)
        guard = StageGuard()  # a grader failure for one student is that student's, in this round
        adjustments = read_session_adjustments(options, self.session.rubric, ready)
        graded = grade_round(self.session, ready, adjustments, progress, guard)
        fresh = dict(zip((s.path for s in ready), graded.grades, strict=True))
        # A file being rewritten keeps its last grade until the new version has settled.
        kept = {s.path: self.graded[s.path] for s in waiting if s.path in self.graded}
        order = [s.path for s in found.submissions if s.path in fresh or s.path in kept]
        current = {path: fresh.get(path) or kept[path] for path in order}
        before = file_stems(g.student for g in self.graded.values())
        after = file_stems(g.student for g in current.values())
        # Re-rendered: a new or changed grade, or a page that moved (a new name took its file name).
        changed = {g.student for path, g in current.items() if self.graded.get(path) != g}
        changed |= {student for student, stem in after.items() if before.get(student) != stem}
        shown = Discovery([s for s in found.submissions if s.path in current], found.ignored)
        first = not self.rounds
        gone = set(before.values()) - set(after.values())  # files of students whose notebooks left
        # Remembered before writing: a Ctrl-C held back during the write is raised as it ends.
        self.graded = current
        self.rounds += 1
        self.pairs = graded.pairs or []
        write_outputs(
            Round(list(current.values()), graded.pairs), self.session, shown, guard, None if first else changed
        )
        remove_outputs(options.out, gone)


def remove_outputs(out: Path, stems: set[str]) -> None:
    """Removes the per-student files of students whose notebooks left the folder (renamed or deleted)."""
    layout = OutputLayout(out)
    for stem in stems:
        for path in layout.student_files(stem):
            path.unlink(missing_ok=True)
        with contextlib.suppress(OSError):
            layout.gradescope_results(stem).parent.rmdir()


def watch(options: Options, cache_dir: Path) -> Outcome:
    """Grades `options.submissions` now and again whenever it changes, until Ctrl-C; returns the last grades."""
    root = options.submissions
    if not root.is_dir():
        raise GraderError(f"{root}: --watch needs a folder to watch (an LMS sync folder), not a file or a zip")
    rubric = load_rubric(options.rubric)
    # How many arrive at once is unknown: share the cores as if every job slot were busy.
    session = start_session(options, rubric, cache_dir, options.jobs or default_jobs())
    watcher = Watcher(session, Settling(max_bytes=session.settings.limits.notebook_bytes))
    try:
        while not watcher.rounds:
            watcher.step(time.monotonic())
            time.sleep(_TICK_MS / 1000)
        if not options.quiet:
            print(f"Watching {root} for new and changed notebooks (Ctrl-C to stop)", file=sys.stderr, flush=True)
        # Timeouts yield too, so a file that was still settling is looked at again without a new event.
        for _ in watchfiles.watch(root, rust_timeout=_TICK_MS, yield_on_timeout=True, raise_interrupt=True):
            watcher.step(time.monotonic())
    except KeyboardInterrupt:
        pass  # outputs are written whole or not at all (see pipeline.write_outputs): they are consistent
    return Outcome(list(watcher.graded.values()), session.calibration, options.out, watcher.pairs)
