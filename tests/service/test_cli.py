"""`grade serve tokens` as a user types it: CSV for a mail merge, and one-line errors."""

from __future__ import annotations

import csv
import io
from pathlib import Path

import pytest
from sqlalchemy import select

from grader.cli import main
from grader.service.db import Student, database_url, open_database
from tests.service.postgres import PostgresServer


def test_tokens_print_csv_once_per_student(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    roster = tmp_path / "roster.csv"
    roster.write_text("student,name,email\nada,Ada,ada@example.edu\nbob,Bob,\n", encoding="utf-8")
    data = tmp_path / "data"
    base = ["serve", "tokens", "--roster", str(roster), "--data", str(data), "--base-url", "https://g.example.edu/"]
    assert main(base) == 0
    rows = list(csv.DictReader(io.StringIO(capsys.readouterr().out)))
    assert [row["student"] for row in rows] == ["ada", "bob"]
    assert all(row["link"] == f"https://g.example.edu/login#{row['token']}" for row in rows)
    assert main(base) == 0
    again = capsys.readouterr()
    assert again.out == "student,token,link\n" and "--rotate" in again.err
    assert main(["serve", "tokens", "--staff", "--data", str(data)]) == 0
    assert list(csv.DictReader(io.StringIO(capsys.readouterr().out)))[0]["student"] == "staff"
    assert oct(data.stat().st_mode & 0o777) == "0o700"


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("name,email\nAda,ada@example.edu\n", "missing column(s) student"),
        ("student\nada\nada\n", "line 3: student 'ada' is listed twice"),
        ("student\n", "no students listed"),
        ("student,name\nada," + "A" * 401 + "\n", "line 2: name is longer than 400 characters"),
    ],
)
def test_a_wrong_roster_is_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str], text: str, says: str) -> None:
    roster = tmp_path / "roster.csv"
    roster.write_text(text, encoding="utf-8")
    assert main(["serve", "tokens", "--roster", str(roster), "--data", str(tmp_path / "data")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("grade serve: error: ") and says in err and err.count("\n") == 1


def test_tokens_on_postgresql_with_the_url_a_course_admin_writes(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], postgres: PostgresServer
) -> None:
    roster = tmp_path / "roster.csv"
    roster.write_text("student,name\nada,Ada\nbob,Bob\n", encoding="utf-8")
    url = postgres.new_database()
    assert url.startswith("postgresql://")
    assert main(["serve", "tokens", "--roster", str(roster), "--data", str(tmp_path / "data"), "--database", url]) == 0
    assert [row["student"] for row in csv.DictReader(io.StringIO(capsys.readouterr().out))] == ["ada", "bob"]
    assert not (tmp_path / "data" / "grader.db").exists()
    with open_database(database_url(url, tmp_path))() as s:
        assert sorted((st.id, st.name) for st in s.scalars(select(Student))) == [("ada", "Ada"), ("bob", "Bob")]


def test_an_unknown_database_scheme_is_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["serve", "tokens", "--staff", "--data", str(tmp_path / "data"), "--database", "mysql://g@localhost/c"]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("grade serve: error: --database: unknown scheme 'mysql'") and err.count("\n") == 1
