"""The service's database on SQLite and on PostgreSQL: the URL `--database` takes, and the migrations from empty."""

from __future__ import annotations

from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import inspect

from grader.service.db import Base, DatabaseError, database_url, migrations, open_database, sqlite_url
from tests.service.conftest import free_port


@pytest.mark.parametrize(
    ("given", "url"),
    [
        (
            "postgresql://grader:s3cret@db.example.edu:5433/course",
            "postgresql+psycopg://grader:s3cret@db.example.edu:5433/course",
        ),
        ("postgres://grader@localhost/course", "postgresql+psycopg://grader@localhost/course"),
        (
            "postgresql+psycopg://grader@/course?host=/run/postgresql",
            "postgresql+psycopg://grader@/course?host=%2Frun%2Fpostgresql",
        ),
        ("sqlite:////srv/course/grader.db", "sqlite:////srv/course/grader.db"),
    ],
)
def test_a_database_url_is_taken_as_a_course_admin_writes_it(given: str, url: str) -> None:
    assert database_url(given, Path("/unused")) == url


def test_without_a_url_the_database_is_sqlite_in_the_data_folder(tmp_path: Path) -> None:
    assert database_url(None, tmp_path) == sqlite_url(tmp_path)


@pytest.mark.parametrize(
    ("given", "says"),
    [
        ("mysql://grader@localhost/course", "unknown scheme 'mysql'"),
        ("postgresql+psycopg2://grader@localhost/course", "unknown scheme 'postgresql+psycopg2'"),
        ("grader@localhost/course", "is not a URL"),
    ],
)
def test_an_unknown_scheme_is_refused_on_one_line(given: str, says: str) -> None:
    with pytest.raises(DatabaseError) as refused:
        database_url(given, Path("/unused"))
    assert says in str(refused.value) and "\n" not in str(refused.value)


def test_a_server_that_does_not_answer_is_a_clear_error(tmp_path: Path) -> None:
    url = database_url(f"postgresql://grader:s3cret@127.0.0.1:{free_port()}/course", tmp_path)
    with pytest.raises(DatabaseError) as refused:
        open_database(url)
    message = str(refused.value)
    assert message.startswith("cannot open the database postgresql+psycopg://grader:***@127.0.0.1:")
    assert "s3cret" not in message and "\n" not in message


def test_the_migrations_build_the_schema_from_empty_and_are_at_head(database: str) -> None:
    db = open_database(database)
    open_database(database)  # a restart: the schema is current, nothing to do
    head = ScriptDirectory.from_config(migrations()).get_current_head()
    with db() as session:
        connection = session.connection()
        context = MigrationContext.configure(connection)
        assert head is not None and context.get_current_revision() == head
        assert compare_metadata(context, Base.metadata) == []  # the tables are the models'
        assert set(inspect(connection).get_table_names()) == {"alembic_version", "students", "tokens", "submissions"}
