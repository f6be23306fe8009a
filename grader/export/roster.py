"""The LMS roster (roster.csv): which student each notebook belongs to, with their LMS ids."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from grader.csvfile import read_rows
from grader.errors import GraderError

ROSTER_COLUMNS = ("notebook", "name", "id", "sis_user_id", "sis_login_id", "section")


class RosterError(GraderError):
    """The roster file is malformed; the message names the file, the row and the column."""


@dataclass(frozen=True, slots=True)
class RosterEntry:
    """One student of the LMS roster, found by the stem of their notebook's file name."""

    notebook: str
    name: str
    id: str
    sis_user_id: str
    sis_login_id: str
    section: str


def read_roster(path: Path) -> dict[str, RosterEntry]:
    """Reads roster.csv (columns: notebook, name, id, sis_user_id, sis_login_id, section), keyed by notebook."""
    roster: dict[str, RosterEntry] = {}
    first_line: dict[str, int] = {}
    for line, values in read_rows(path, ROSTER_COLUMNS, RosterError, "roster"):
        for column in ("notebook", "name"):
            if not values[column]:
                raise RosterError(f"{path}: line {line}: column {column!r} is empty")
        notebook = values["notebook"].removesuffix(".ipynb")
        if notebook in roster:
            raise RosterError(
                f"{path}: line {line}: notebook {notebook!r} is already listed on line {first_line[notebook]}"
            )
        first_line[notebook] = line
        roster[notebook] = RosterEntry(**{**values, "notebook": notebook})
    return roster
