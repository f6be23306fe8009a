"""The course a `grade serve` serves: its rubric, database, queue and folders, and how a submission is shown."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy.orm import sessionmaker

from grader.rubric.model import Rubric
from grader.service.data_folder import DataFolder
from grader.service.db import QUEUED, RUNNING, Upload, now, utc
from grader.service.queue import Queue
from grader.visibility import hides_now


@dataclass(slots=True)
class Course:
    """What the routes serve from: the rubric, the database and its queue, and the folders under --data."""

    rubric: Rubric
    db: sessionmaker[Any]
    queue: Queue
    data: DataFolder
    max_upload_bytes: int

    def follow(self, rubric: Rubric) -> None:
        """Serves under `rubric` from now on (re-read for a re-score): its due date, visibility and limit."""
        self.rubric = rubric
        self.queue.due, self.queue.per_hour = rubric.due, rubric.service.submissions_per_hour
        self.queue.grace_minutes = rubric.late.grace_minutes

    def hides(self) -> bool:
        return hides_now(self.rubric, now())


def upload_view(course: Course, upload: Upload, staff: bool = False) -> dict[str, Any]:
    """A submission as the API and the pages show it: before the due date, hidden checks' points left out."""
    hides = course.hides() and not staff
    return {
        "id": upload.id,
        "filename": upload.filename,
        "received_at": utc(upload.received_at).isoformat(timespec="seconds"),
        "late": upload.late,
        "status": upload.status,
        "place": course.queue.place(upload.id) if upload.status == QUEUED else None,
        "cell": course.queue.cell(upload.id) if upload.status == RUNNING else None,
        "points": upload.points_shown if hides else upload.points,
        "max_points": upload.max_points if upload.max_points is not None else course.rubric.max_total,
        "message": upload.message,
        "report": f"/submissions/{upload.id}/report" if upload.status not in (QUEUED, RUNNING) else None,
    }
