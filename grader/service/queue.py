"""The queue of submissions, kept in the database: accepted in order, graded in order, each exactly once.

A submission is `queued` when accepted, `running` while a worker grades it, then `graded` or `error`. A
service stopped in any way (Ctrl-C, kill -9, power loss) leaves some `running`: on start they go back to
`queued`, and since a grade is committed in the same transaction that ends the run, none is recorded twice.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.orm import sessionmaker

from grader.lateness import measure_lateness
from grader.service.db import QUEUED, RUNNING, Upload, now
from grader.service.uploads import StoredNotebook, UploadRefused


@dataclass(frozen=True, slots=True)
class Result:
    status: str  # GRADED or ERROR
    points: float
    points_shown: float
    max_points: float
    message: str


@dataclass
class Queue:
    db: sessionmaker[Any]
    capacity: int  # submissions waiting at most; more are refused until some are graded
    per_hour: int  # submissions one student may make in an hour
    due: datetime | None
    grace_minutes: float = 0.0  # the late policy's grace: within it a submission is on time
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)
    # The code cell each running submission is in, and how many it has: kept in memory, as it changes by the second.
    _cells: dict[int, tuple[int, int]] = field(default_factory=dict, repr=False)

    def at_cell(self, upload_id: int, number: int, total: int) -> None:
        self._cells[upload_id] = (number, total)

    def cell(self, upload_id: int) -> tuple[int, int] | None:
        """The code cell a running submission is in and how many it has; None before its first cell starts."""
        return self._cells.get(upload_id)

    def accept(self, student: str, notebook: StoredNotebook) -> int:
        """Queues a stored notebook and returns its id; UploadRefused when a limit is reached."""
        with self._lock, self.db.begin() as session:
            received = now()
            recent = session.scalar(
                select(func.count())
                .select_from(Upload)
                .where(Upload.student == student, Upload.received_at > received - timedelta(hours=1))
            )
            if recent is not None and recent >= self.per_hour:
                raise UploadRefused(
                    f"you have submitted {self.per_hour} notebooks in the last hour, the most this course allows; "
                    "try again later",
                    429,
                )
            waiting = session.scalar(select(func.count()).select_from(Upload).where(Upload.status == QUEUED))
            if waiting is not None and waiting >= self.capacity:
                raise UploadRefused(
                    f"the grading queue is full ({self.capacity} notebooks waiting); try again in a few minutes", 503
                )
            upload = Upload(
                student=student,
                filename=notebook.filename,
                stored=notebook.stored,
                received_at=received,
                late=measure_lateness(received, False, self.due, self.grace_minutes).late,
                status=QUEUED,
            )
            session.add(upload)
            session.flush()
            return upload.id

    def claim(self) -> Upload | None:
        """The oldest queued submission, now marked running; None when nothing waits.

        One statement picks and marks it, so that two workers (threads or processes) never take the same one:
        PostgreSQL locks the row it picks and another claim skips it (FOR UPDATE SKIP LOCKED) for the next;
        SQLite runs the statement under its single writer's lock. The workers of one process also claim one at a
        time, so that the time each submission started follows the order they were claimed in."""
        oldest = (
            select(Upload.id)
            .where(Upload.status == QUEUED)
            .order_by(Upload.id)
            .limit(1)
            .with_for_update(skip_locked=True)
            .scalar_subquery()
        )
        with self._lock, self.db.begin() as session:
            return session.scalar(
                update(Upload)
                .where(Upload.id == oldest, Upload.status == QUEUED)
                .values(status=RUNNING, started_at=now(), runs=Upload.runs + 1)
                .returning(Upload)
            )

    def finish(self, upload_id: int, result: Result, was: tuple[str, ...] = (RUNNING,)) -> None:
        """Records a grade: of a run (`was` running), or of a re-score (`was` graded or error)."""
        self._cells.pop(upload_id, None)
        with self.db.begin() as session:
            session.execute(
                update(Upload)
                .where(Upload.id == upload_id, Upload.status.in_(was))
                .values(
                    status=result.status,
                    finished_at=now(),
                    points=result.points,
                    points_shown=result.points_shown,
                    max_points=result.max_points,
                    message=result.message[:2000],
                )
            )

    def resume(self) -> int:
        """Puts the submissions a stopped service left running back in the queue; returns how many."""
        with self.db.begin() as session:
            result = session.execute(update(Upload).where(Upload.status == RUNNING).values(status=QUEUED))
            return int(getattr(result, "rowcount", 0) or 0)

    def place(self, upload_id: int) -> int:
        """Where a queued submission stands in the queue: 1 is graded next."""
        with self.db() as session:
            ahead = session.scalar(
                select(func.count()).select_from(Upload).where(Upload.status == QUEUED, Upload.id < upload_id)
            )
            return int(ahead or 0) + 1
