"""When a submission came in against the rubric's due date: how late it was, as a plain value.

A pure function of the times: the submission time where the LMS gives one (D2L's time stamp), the LMS's own
late flag where it gives no time (Canvas's `_LATE`), the rubric's `due` and its grace. `grader.late` turns
the result into points.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime, timedelta

DAY = timedelta(days=1)


@dataclass(frozen=True, slots=True)
class Lateness:
    """How late one submission was. `late_by` is None where no time is known (only the LMS's flag)."""

    late: bool = False
    submitted_at: datetime | None = None  # time-zone aware, where the LMS gives a time
    late_by: timedelta | None = None  # past the due date; within the grace the submission is on time
    days: int = 0  # started days late (a late submission of unknown time counts as one)

    def describe(self) -> str:
        """When it was submitted and how late, in words: "Submitted Dec 2, 2026 11:59 PM (UTC-06:00), 1 day late"."""
        parts = [f"Submitted {when(self.submitted_at)}"] if self.submitted_at else []
        if not self.late:
            past = self.late_by if self.late_by is not None and self.late_by > timedelta(0) else None
            parts.append(f"{duration(past)} after the due date, within the grace" if past else "on time")
        elif self.late_by is None:
            parts.append("Submitted late (marked late by the LMS; the time is not known, counted as 1 day)")
        else:
            parts.append(f"{duration(self.late_by)} late ({self.days} started day{'s' if self.days != 1 else ''})")
        return ", ".join(parts)


def measure_lateness(
    submitted_at: datetime | None, flagged_late: bool, due: datetime | None, grace_minutes: float = 0.0
) -> Lateness:
    """How late a submission was: from its time and `due` where both are known, else from the LMS's flag."""
    if submitted_at is not None and due is not None:
        late_by = submitted_at - due
        if late_by <= timedelta(minutes=grace_minutes):
            return Lateness(False, submitted_at, late_by)
        return Lateness(True, submitted_at, late_by, math.ceil(late_by / DAY))
    if flagged_late:
        return Lateness(True, submitted_at, None, 1)
    return Lateness(False, submitted_at)


def when(moment: datetime) -> str:
    """A time as the reports show it: "Dec 2, 2026 11:59 PM (UTC-06:00)"."""
    clock = f"{moment:%b} {moment.day}, {moment.year} {moment.hour % 12 or 12}:{moment:%M %p}"
    return f"{clock} ({zone_name(moment)})" if moment.tzinfo else clock


def zone_name(moment: datetime) -> str:
    """The zone of a time as people write it: its name (CST) where it has one, else its offset (UTC-06:00)."""
    name = moment.tzname() or ""
    if name and not name.startswith(("+", "-", "UTC")):
        return name
    offset = moment.utcoffset() or timedelta(0)
    minutes = round(offset.total_seconds() / 60)
    sign = "-" if minutes < 0 else "+"
    return f"UTC{sign}{abs(minutes) // 60:02d}:{abs(minutes) % 60:02d}" if minutes else "UTC"


def duration(span: timedelta) -> str:
    """A time span in days, hours and minutes: "1 day 12 h", "3 min"."""
    minutes = max(0, round(span.total_seconds() / 60))
    days, rest = divmod(minutes, 24 * 60)
    hours, mins = divmod(rest, 60)
    parts = [f"{days} day{'s' if days != 1 else ''}"] if days else []
    parts += [f"{hours} h"] if hours else []
    parts += [f"{mins} min"] if mins or not parts else []
    return " ".join(parts)
