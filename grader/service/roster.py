"""Reads the course roster of `grade serve` (roster.csv: a `student` column; `name` and `email` kept if there)."""

from __future__ import annotations

import csv
from pathlib import Path

from grader.csvfile import read_rows
from grader.errors import GraderError
from grader.service.db import ROSTER_LENGTHS, Student

OPTIONAL = ("name", "email")


class ServiceRosterError(GraderError):
    """The roster is malformed; the message names the file and the line."""


def read_service_roster(path: Path) -> dict[str, Student]:
    """The roster's students by id, in its order; an empty or repeated id is an error naming the line."""
    try:
        with path.open(encoding="utf-8-sig", newline="") as fh:
            header = [h.strip() for h in next(csv.reader(fh), [])]
    except OSError as exc:
        raise ServiceRosterError(f"cannot read roster {path}: {exc.strerror}") from None
    columns = ("student", *(c for c in OPTIONAL if c in header))
    students: dict[str, Student] = {}
    for line, values in read_rows(path, columns, ServiceRosterError, "roster"):
        student = values["student"]
        if not student:
            raise ServiceRosterError(f"{path}: line {line}: column 'student' is empty")
        for column, value in values.items():
            if len(value) > ROSTER_LENGTHS[column]:
                raise ServiceRosterError(
                    f"{path}: line {line}: {column} is longer than {ROSTER_LENGTHS[column]} characters"
                )
        if student in students:
            raise ServiceRosterError(f"{path}: line {line}: student {student!r} is listed twice")
        students[student] = Student(id=student, name=values.get("name", ""), email=values.get("email", ""))
    if not students:
        raise ServiceRosterError(f"{path}: no students listed")
    return students
