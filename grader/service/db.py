"""The service's database: students, their hashed tokens and their submissions (SQLAlchemy 2, Alembic schema)."""

from __future__ import annotations

from datetime import UTC, datetime
from importlib import resources, util
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from sqlalchemy import DateTime, Engine, ForeignKey, String, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, OperationalError
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, sessionmaker

from grader.errors import GraderError

QUEUED, RUNNING, GRADED, ERROR = "queued", "running", "graded", "error"


class Base(DeclarativeBase):
    type_annotation_map = {datetime: DateTime(timezone=True)}  # noqa: RUF012 - SQLAlchemy's declaration


# The longest roster values the students table holds (PostgreSQL refuses longer ones; the roster is checked first).
ROSTER_LENGTHS = {"student": 200, "name": 400, "email": 400}


class Student(Base):
    __tablename__ = "students"
    id: Mapped[str] = mapped_column(String(ROSTER_LENGTHS["student"]), primary_key=True)
    name: Mapped[str] = mapped_column(String(ROSTER_LENGTHS["name"]), default="")
    email: Mapped[str] = mapped_column(String(ROSTER_LENGTHS["email"]), default="")


class Token(Base):
    """A personal link's secret, stored as its SHA-256: the database never holds a token that signs in."""

    __tablename__ = "tokens"
    id: Mapped[int] = mapped_column(primary_key=True)
    digest: Mapped[str] = mapped_column(String(64), unique=True)
    student: Mapped[str | None] = mapped_column(ForeignKey("students.id"), index=True)  # None for staff
    staff: Mapped[bool] = mapped_column(default=False)
    created_at: Mapped[datetime]
    revoked_at: Mapped[datetime | None] = mapped_column(default=None)


class Upload(Base):
    """One submitted notebook and what became of it: queued, running, graded or error."""

    __tablename__ = "submissions"
    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=True)
    student: Mapped[str] = mapped_column(ForeignKey("students.id"), index=True)
    filename: Mapped[str] = mapped_column(String(255))  # the student's name for the file, shown back to them
    stored: Mapped[str] = mapped_column(String(100))  # the file's name under DATA/uploads
    received_at: Mapped[datetime] = mapped_column(index=True)
    late: Mapped[bool] = mapped_column(default=False)
    status: Mapped[str] = mapped_column(String(16), index=True, default=QUEUED)
    started_at: Mapped[datetime | None] = mapped_column(default=None)
    finished_at: Mapped[datetime | None] = mapped_column(default=None)
    runs: Mapped[int] = mapped_column(default=0)  # times a worker started it; > 1 only after a restart
    points: Mapped[float | None] = mapped_column(default=None)  # the whole grade, for staff and after `due`
    points_shown: Mapped[float | None] = mapped_column(default=None)  # what the student sees before `due`
    max_points: Mapped[float | None] = mapped_column(default=None)
    message: Mapped[str] = mapped_column(String(2000), default="")


def utc(moment: datetime) -> datetime:
    """A time read back from the database, in UTC: SQLite keeps no time zone (every time stored is UTC), and
    PostgreSQL gives it back in the session's time zone."""
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def now() -> datetime:
    return datetime.now(UTC)


def sqlite_url(data: Path) -> str:
    return f"sqlite:///{(data / 'grader.db').resolve()}"


# The URL forms a course admin writes, and the SQLAlchemy driver each means (psycopg 3 for PostgreSQL).
DRIVERS = {"sqlite": "sqlite", "postgresql": "postgresql+psycopg", "postgres": "postgresql+psycopg"}


class DatabaseError(GraderError):
    """The database URL is not one the service can use, or the database cannot be reached."""


def database_url(given: str | None, data: Path) -> str:
    """The SQLAlchemy URL of `--database` (SQLite in `data` without it): postgresql://... means psycopg 3."""
    if given is None:
        return sqlite_url(data)
    try:
        url = make_url(given)
    except ArgumentError:
        raise DatabaseError(f"--database {given!r} is not a URL: use postgresql://USER@HOST/DATABASE") from None
    scheme = url.drivername
    driver = DRIVERS.get(scheme, scheme if scheme in DRIVERS.values() else None)
    if driver is None:
        raise DatabaseError(
            f"--database: unknown scheme {scheme!r}: use postgresql://USER@HOST/DATABASE or sqlite:///PATH"
        )
    if driver == "postgresql+psycopg" and util.find_spec("psycopg") is None:
        raise DatabaseError(
            "PostgreSQL needs its driver, psycopg 3: install the grader with its extra, pip install '.[postgres]'"
        )
    return url.set(drivername=driver).render_as_string(hide_password=False)


def _sqlite_durable(dbapi_connection: Any, _record: Any) -> None:
    """WAL with full sync: a commit is on disk when it returns, and readers do not wait for the worker."""
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=FULL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=10000")
    cursor.close()


def open_database(url: str) -> sessionmaker[Any]:
    """The database at `url`, its schema migrated to the newest version; returns a session factory."""
    engine = create_engine(url, pool_pre_ping=True)
    if engine.dialect.name == "sqlite":
        event.listen(engine, "connect", _sqlite_durable)
    try:
        migrate(engine)
    except OperationalError as exc:
        reason = str(exc.orig).strip().splitlines()[0] if exc.orig else str(exc)
        raise DatabaseError(f"cannot open the database {engine.url}: {reason}") from None
    return sessionmaker(engine, expire_on_commit=False)


def migrations() -> Config:
    """Alembic's configuration of the package's migrations."""
    config = Config()
    config.set_main_option("script_location", str(resources.files("grader.service") / "migrations"))
    return config


def migrate(engine: Engine) -> None:
    """Runs the package's Alembic migrations up to the newest (nothing when the schema is current)."""
    config = migrations()
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, "head")
