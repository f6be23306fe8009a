"""D2L's gradebook: its grades export read as the roster, students found by name, d2l.csv in its import format.

No kernel: grades are made by hand from the test factories.
"""

from __future__ import annotations

import csv
import dataclasses
from pathlib import Path

import pytest

from grader.d2l_gradebook import D2LRosterError, d2l_warnings, is_d2l_export, read_d2l_roster, write_d2l_csv
from grader.discover import Origin
from grader.score import StudentGrade
from tests.factories import make_grade, rubric

EXPORT_HEADER = (
    "OrgDefinedId,Username,Last Name,First Name,Email,HW1 Points Grade <Numeric MaxPoints:100>,End-of-Line Indicator\n"
)


def export(tmp_path: Path, rows: str, header: str = EXPORT_HEADER) -> Path:
    path = tmp_path / "d2l-export.csv"
    path.write_text(header + rows, encoding="utf-8-sig")  # D2L's export, saved by a spreadsheet: a BOM
    return path


def d2l_grade(name: str, total_off: float = 0.0) -> StudentGrade:
    grade = make_grade(name)
    return dataclasses.replace(grade, total=grade.total - total_off, origin=Origin(name=name, lms="d2l"))


CLASS = (
    "#20067930,cdiaz,Diaz,Cara,cdiaz@example.edu,,#\n"
    "#20067931,kpark,Park,Kim,kpark@example.edu,,#\n"
    "#20067932,jngo,Ngo - Marie,Jean-Luc,jngo@example.edu,,#\n"
    "#20067933,lee1,Lee,Sam,lee1@example.edu,,#\n"
    "#20067934,lee2,Lee,Sam,lee2@example.edu,,#\n"
)


def test_d2l_csv_has_the_ids_the_points_and_the_end_of_line(tmp_path: Path) -> None:
    roster = read_d2l_roster(export(tmp_path, CLASS))
    grades = [
        d2l_grade("Cara Diaz", 12.5),
        d2l_grade("KIM PARK"),  # case and accents do not matter
        d2l_grade("Jean-Luc Ngô - Marie", 30),
        d2l_grade("Sam Lee"),  # two rows of that name: never guessed
        d2l_grade("Dana Nobody"),
    ]
    write_d2l_csv(grades, tmp_path / "d2l.csv", rubric(), roster)
    with (tmp_path / "d2l.csv").open(encoding="utf-8", newline="") as file:
        rows = list(csv.DictReader(file))
    title = f"{rubric().title} Points Grade"
    assert [(r["OrgDefinedId"], r["Username"], r[title], r["End-of-Line Indicator"]) for r in rows] == [
        ("#20067930", "cdiaz", "87.5", "#"),
        ("#20067931", "kpark", "100", "#"),
        ("#20067932", "jngo", "70", "#"),
    ]
    assert d2l_warnings(grades, roster) == [
        "'Sam Lee' matches 2 rows of d2l-export.csv (#20067933, #20067934): left out of d2l.csv; "
        "enter the grade by hand",
        "'Dana Nobody' matches no row of d2l-export.csv: left out of d2l.csv; enter the grade by hand",
    ]


def test_a_roster_is_told_from_a_d2l_export_by_its_header(tmp_path: Path) -> None:
    assert is_d2l_export(export(tmp_path, CLASS))
    roster_csv = tmp_path / "roster.csv"
    roster_csv.write_text("notebook,name,id,sis_user_id,sis_login_id,section\n", encoding="utf-8")
    assert not is_d2l_export(roster_csv)


@pytest.mark.parametrize(
    ("header", "rows", "words"),
    [
        ("OrgDefinedId,Username,Last Name,First Name\n", "", "line 1: missing column(s) Email"),
        (
            EXPORT_HEADER,
            CLASS + "#20067930,other,Diaz,Carla,x@example.edu,,#\n",
            "line 7: OrgDefinedId '#20067930' is already given on line 2",
        ),
        (
            EXPORT_HEADER,
            "#1,same,A,B,a@x,,#\n#2,same,C,D,c@x,,#\n",
            "line 3: Username 'same' is already given on line 2",
        ),
        (EXPORT_HEADER, ",,A,B,a@x,,#\n", "line 2: no OrgDefinedId nor Username"),
        (EXPORT_HEADER, "#1,a,,,a@x,,#\n", "line 2: no First Name nor Last Name"),
        (EXPORT_HEADER, "#1,a,A,B\n", "line 2: 4 fields, but the header has 7"),
    ],
)
def test_a_malformed_d2l_export_names_the_file_and_line(tmp_path: Path, header: str, rows: str, words: str) -> None:
    path = export(tmp_path, rows, header)
    with pytest.raises(D2LRosterError) as raised:
        read_d2l_roster(path)
    assert str(raised.value).startswith(f"{path}: ") and words in str(raised.value)
