"""Grades the queue: a job is one submission through the same pipeline as `grade` (executors, sandbox, facts
cache, scoring, reports), then the class's outputs (index.html, grades.csv, ...) are brought up to date."""

from __future__ import annotations

import functools
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import sessionmaker

from grader.atomic_write import atomic_write
from grader.discover import Discovery, Origin, Submission
from grader.errors import GraderError
from grader.isolation import StageGuard
from grader.pipeline import Options, Session, grade_round, report_context, start_session, write_outputs
from grader.progress import Progress
from grader.report.render import student_page
from grader.rubric.load import load_rubric
from grader.service.data_folder import DataFolder
from grader.service.db import ERROR, GRADED, Upload, utc
from grader.service.queue import Queue, Result
from grader.visibility import student_view

log = logging.getLogger("grader.service")
IDLE_POLL_S = 1.0  # how long an idle worker waits for a wake-up before it looks at the queue again


@dataclass
class Grader:
    """The pipeline's side of the service: the session `grade` would start, and what to do with one grade."""

    session: Session
    cache_dir: Path
    data: DataFolder
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)  # the class outputs

    @classmethod
    def start(cls, options: Options, cache_dir: Path, data: DataFolder) -> Grader:
        """Checks the inputs and calibrates on the reference, as `grade` does before its first notebook."""
        rubric = load_rubric(options.rubric)
        session = start_session(options, rubric, cache_dir, options.jobs or 1)
        data.reports.mkdir(parents=True, exist_ok=True)
        return cls(session, cache_dir, data)

    def submission(self, upload: Upload) -> Submission:
        # The upload's time decides lateness against the rubric's `due`, with its grace and per-day policy, as for
        # a D2L time stamp.
        origin = Origin(late=upload.late, submitted_at=utc(upload.received_at))
        return Submission(upload.student, self.data.uploads / upload.stored, origin=origin)

    def grade(
        self, upload: Upload, session: Session | None = None, on_cell: Callable[[int, int], None] | None = None
    ) -> Result:
        """Grades one submission (from the facts cache when its notebook ran before) and writes its reports;
        `on_cell` hears which code cell its run is in."""
        session = session or self.session
        guard = StageGuard()
        cells = (lambda _sub, number, total: on_cell(number, total)) if on_cell is not None else None
        graded = grade_round(session, [self.submission(upload)], {}, Progress(1, quiet=True), guard, cells)
        grade = guard.mark(graded.grades[0])
        shown = student_view(grade, session.rubric)
        ctx = report_context(session, near_copies=False)
        atomic_write(self.data.report(upload.id, False), student_page(grade, session.rubric, ctx))
        atomic_write(self.data.report(upload.id, True), student_page(shown, session.rubric, ctx))
        status = GRADED if grade.status == "graded" else ERROR
        return Result(status, grade.total, shown.total, grade.max_total, grade.message)

    def write_class(self, db: sessionmaker[Any]) -> None:
        """Rewrites the class's outputs from each student's latest graded submission (facts from the cache)."""
        with db() as s:
            newest = select(func.max(Upload.id)).where(Upload.status == GRADED).group_by(Upload.student)
            uploads = list(s.scalars(select(Upload).where(Upload.id.in_(newest)).order_by(Upload.student)))
        with self.lock:
            session = self.rescoring()
            subs = [self.submission(u) for u in uploads]
            guard = StageGuard()
            graded = grade_round(session, subs, {}, Progress(len(subs), quiet=True), guard)
            write_outputs(graded, session, Discovery(subs, []), guard)

    def rescoring(self) -> Session:
        """The session with `--rescore`: facts come from the cache, and a notebook never run is an error."""
        return replace(self.session, options=replace(self.session.options, rescore=True))

    def reload(self) -> None:
        """Reads the rubric again and calibrates on the reference (from the cache), for a re-score after an edit."""
        options = self.session.options
        session = start_session(options, load_rubric(options.rubric), self.cache_dir, self.session.jobs)
        with self.lock:
            self.session = session


@dataclass
class Workers:
    """`jobs` threads taking submissions from the queue in order, and one keeping the class outputs current."""

    queue: Queue
    grader: Grader
    jobs: int
    stopping: threading.Event = field(default_factory=threading.Event)
    wake: threading.Event = field(default_factory=threading.Event)
    class_changed: threading.Event = field(default_factory=threading.Event)
    busy: set[int] = field(default_factory=set)  # ids being graded now
    threads: list[threading.Thread] = field(default_factory=list)

    def start(self) -> None:
        self.class_changed.set()  # the class outputs are written once at start
        for n in range(self.jobs):
            self.threads.append(threading.Thread(target=self._work, name=f"grader-{n + 1}", daemon=True))
        self.threads.append(threading.Thread(target=self._keep_class, name="class-outputs", daemon=True))
        for thread in self.threads:
            thread.start()

    def stop(self, grace_s: float) -> None:
        """Takes no new submission; waits up to `grace_s` for those running (the rest resume at the next start)."""
        self.stopping.set()
        self.wake.set()
        deadline = time.monotonic() + grace_s
        for thread in self.threads:
            thread.join(max(0.0, deadline - time.monotonic()))
        if self.busy:
            log.info("stopped with submission(s) %s unfinished: they are graded at the next start", sorted(self.busy))

    def _work(self) -> None:
        while not self.stopping.is_set():
            upload = self.queue.claim()
            if upload is None:
                self.wake.wait(IDLE_POLL_S)
                self.wake.clear()
                continue
            self.busy.add(upload.id)
            started = time.monotonic()
            log.info("grading submission %d of %s", upload.id, upload.student)
            try:
                result = self.grader.grade(upload, on_cell=functools.partial(self.queue.at_cell, upload.id))
            except Exception as exc:  # a grader fault: this submission's alone, and staff see the message
                log.exception("grading submission %d failed", upload.id)
                max_points = self.grader.session.rubric.max_total
                result = Result(ERROR, 0.0, 0.0, max_points, f"the grader failed: {type(exc).__name__}: {exc}")
            self.queue.finish(upload.id, result)
            self.busy.discard(upload.id)
            log.info(
                "submission %d %s: %g/%g in %.1f s",
                upload.id,
                result.status,
                result.points,
                result.max_points,
                time.monotonic() - started,
            )
            self.class_changed.set()

    def _keep_class(self) -> None:
        while not self.stopping.is_set():
            if not self.class_changed.wait(IDLE_POLL_S):
                continue
            self.class_changed.clear()
            try:
                self.grader.write_class(self.queue.db)
            except GraderError as exc:
                log.warning("class outputs not updated: %s", exc)
            except Exception:
                log.exception("class outputs not updated")

    def rescore_everyone(self) -> int:
        """Re-reads the rubric and re-scores every finished submission from the facts cache, as `--rescore` does;
        returns how many were re-scored."""
        self.grader.reload()
        session = self.grader.rescoring()
        with self.queue.db() as s:
            uploads = list(s.scalars(select(Upload).where(Upload.status.in_((GRADED, ERROR))).order_by(Upload.id)))
        done = 0
        for upload in uploads:
            try:
                result = self.grader.grade(upload, session)
            except GraderError as exc:  # no cached facts (never ran: it failed to start): left as it was
                log.warning("submission %d not re-scored: %s", upload.id, exc)
                continue
            self.queue.finish(upload.id, result, was=(GRADED, ERROR))
            done += 1
        self.class_changed.set()
        log.info("re-scored %d submission(s) under the rubric as it is now", done)
        return done
