"""D2L Brightspace's gradebook: reads its grades export as the roster and writes `d2l.csv` in its import format.

D2L's download of submissions names each student but carries neither their Org Defined ID nor their username,
and D2L's import matches on those. The grades export the instructor downloads (Grades > Export, with the Org
Defined ID, Username, Last Name, First Name and Email columns) gives them: a student is found there by name,
without case or accents. A name matching no row, or several, is never guessed: that student is left out of
d2l.csv and listed, so the instructor enters the grade by hand.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from grader.atomic_write import atomic_write
from grader.csvfile import read_rows
from grader.discover import name_key
from grader.errors import GraderError
from grader.export.rows import csv_text, guarded_rows
from grader.isolation import D2L_CSV, StageFailure, StageGuard
from grader.rubric.model import Rubric
from grader.score import StudentGrade, number

D2L_ROSTER_COLUMNS = ("OrgDefinedId", "Username", "Last Name", "First Name", "Email")
END_OF_LINE = "End-of-Line Indicator"


class D2LRosterError(GraderError):
    """The D2L grades export is malformed; the message names the file, the line and the problem."""


@dataclass(frozen=True, slots=True)
class D2LStudent:
    """One row of D2L's grades export: who D2L's import knows, and by which ids."""

    org_defined_id: str
    username: str
    first_name: str
    last_name: str
    email: str

    @property
    def name(self) -> str:
        return f"{self.first_name} {self.last_name}"


@dataclass(frozen=True, slots=True)
class D2LRoster:
    """The students of a D2L grades export, found by name (`name_key`: no case, no accents)."""

    path: Path
    by_name: dict[str, tuple[D2LStudent, ...]]

    def find(self, name: str) -> tuple[D2LStudent, ...]:
        """Every row whose "First Last" reads as `name`: one, none, or several (then none is chosen)."""
        return self.by_name.get(name_key(name), ())


def is_d2l_export(path: Path) -> bool:
    """Whether a roster file is D2L's grades export (its header names D2L's columns), not a roster.csv."""
    try:
        with path.open(encoding="utf-8-sig", newline="") as file:
            header = file.readline()
    except (OSError, UnicodeDecodeError):
        return False  # the roster reader says what is wrong with it
    return any(column in header for column in ("OrgDefinedId", END_OF_LINE))


def read_d2l_roster(path: Path) -> D2LRoster:
    """Reads D2L's grades export; raises D2LRosterError naming the file and line of a missing column, an empty
    id, or an Org Defined ID or username given twice."""
    by_name: dict[str, list[D2LStudent]] = {}
    first_line: dict[tuple[str, str], int] = {}
    for line, values in read_rows(path, D2L_ROSTER_COLUMNS, D2LRosterError, "D2L grades export"):
        student = D2LStudent(
            values["OrgDefinedId"], values["Username"], values["First Name"], values["Last Name"], values["Email"]
        )
        if not student.org_defined_id and not student.username:
            raise D2LRosterError(f"{path}: line {line}: no OrgDefinedId nor Username; D2L's import needs one")
        if not student.first_name.strip() and not student.last_name.strip():
            raise D2LRosterError(f"{path}: line {line}: no First Name nor Last Name to find the student by")
        for column, value in (("OrgDefinedId", student.org_defined_id), ("Username", student.username)):
            if not value:
                continue
            if (column, value) in first_line:
                raise D2LRosterError(
                    f"{path}: line {line}: {column} {value!r} is already given on line {first_line[column, value]}"
                )
            first_line[column, value] = line
        by_name.setdefault(name_key(student.name), []).append(student)
    return D2LRoster(path, {key: tuple(rows) for key, rows in by_name.items()})


def d2l_warnings(grades: Iterable[StudentGrade], roster: D2LRoster) -> list[str]:
    """One line per student left out of d2l.csv: their name matches no row of the export, or several."""
    warnings = []
    for grade in grades:
        found = roster.find(grade.display_name)
        if len(found) == 1:
            continue
        if found:
            ids = ", ".join(s.org_defined_id or s.username for s in found)
            why = f"matches {len(found)} rows of {roster.path.name} ({ids})"
        else:
            why = f"matches no row of {roster.path.name}"
        warnings.append(f"{grade.display_name!r} {why}: left out of d2l.csv; enter the grade by hand")
    return warnings


def write_d2l_csv(
    grades: list[StudentGrade], path: Path, rubric: Rubric, roster: D2LRoster, guard: StageGuard | None = None
) -> None:
    """Writes D2L's grade import: OrgDefinedId, Username, `<title> Points Grade`, and `#` as the end of line.

    Only students found once in the roster are written (`d2l_warnings` lists the others); a student whose row
    could not be made is left out too, their report says why.
    """

    def row(grade: StudentGrade) -> list[Any] | None:
        found = roster.find(grade.display_name)
        if len(found) != 1:
            return None
        return [found[0].org_defined_id, found[0].username, number(grade.total), "#"]

    def failed(grade: StudentGrade, _: StageFailure) -> list[Any] | None:
        return None

    header = ["OrgDefinedId", "Username", f"{rubric.title} Points Grade", END_OF_LINE]
    rows = [r for r in guarded_rows(grades, D2L_CSV, row, failed, guard) if r is not None]
    atomic_write(path, csv_text([header, *rows]))
