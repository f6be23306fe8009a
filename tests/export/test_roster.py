"""roster.csv read strictly: each malformed row named."""

from __future__ import annotations

from pathlib import Path

import pytest

from grader.errors import GraderError
from grader.export.roster import RosterEntry, read_roster
from tests.export.grades import ROSTER


def test_roster_maps_notebooks_to_students(tmp_path: Path) -> None:
    path = tmp_path / "roster.csv"
    path.write_text("\ufeff" + ROSTER, encoding="utf-8")  # as a spreadsheet saves it
    roster = read_roster(path)
    assert roster == {
        "ada": RosterEntry("ada", "Lovelace, Ada", "1001", "S1001", "ada@uni.edu", "CSC 383"),
        "hal": RosterEntry("hal", "Hal Jordan", "1002", "S1002", "hal@uni.edu", "CSC 483"),
    }


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ("notebook,name,id,sis_user_id,section\nada,Ada,1,S1,A\n", ["line 1", "sis_login_id"]),
        (ROSTER + "kim,Kim,3,S3,kim@uni.edu\n", ["line 4", "5 fields", "6"]),
        (ROSTER + ",Nobody,4,S4,n@uni.edu,A\n", ["line 4", "'notebook'"]),
        (ROSTER + "ada,Ada Again,5,S5,a2@uni.edu,A\n", ["line 4", "'ada'", "line 2"]),
        ("", ["empty"]),
    ],
)
def test_a_malformed_roster_names_the_row_and_column(tmp_path: Path, text: str, words: list[str]) -> None:
    path = tmp_path / "roster.csv"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(GraderError) as error:
        read_roster(path)
    assert str(path) in str(error.value)
    for word in words:
        assert word in str(error.value)


def test_a_missing_roster_is_a_user_error(tmp_path: Path) -> None:
    with pytest.raises(GraderError, match="cannot read roster"):
        read_roster(tmp_path / "nope.csv")
