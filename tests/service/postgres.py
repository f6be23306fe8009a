"""A real, throwaway PostgreSQL server for the service's tests: Debian's initdb and pg_ctl in a temporary folder,
on 127.0.0.1 only, run as the `postgres` user when the tests run as root (PostgreSQL refuses root)."""

from __future__ import annotations

import itertools
import os
import pwd
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from sqlalchemy import create_engine, text

from grader.service.db import database_url
from tests.service.conftest import free_port

BINARIES = sorted(Path("/usr/lib/postgresql").glob("*/bin/pg_ctl"), key=lambda p: int(p.parent.parent.name))
USER = "grader"
# Not UTC: a time the service reads back must be converted, not merely labelled, to be shown right.
TIMEZONE = "America/New_York"
START_TIMEOUT_S = 60


def installed() -> Path | None:
    """The newest installed PostgreSQL's bin folder, if any."""
    return BINARIES[-1].parent if BINARIES else None


@dataclass
class PostgresServer:
    port: int
    _names: Iterator[int] = field(default_factory=itertools.count)

    def url(self, database: str) -> str:
        """The URL a course admin would write (the service maps it to psycopg 3)."""
        return f"postgresql://{USER}@127.0.0.1:{self.port}/{database}"

    def new_database(self) -> str:
        """A fresh, empty database on this server; returns its URL."""
        name = f"course_{next(self._names)}"
        admin = create_engine(database_url(self.url("postgres"), Path()))
        with admin.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
            connection.execute(text(f'CREATE DATABASE "{name}"'))
        admin.dispose()
        return self.url(name)


def _run(argv: list[str], folder: Path) -> None:
    """Runs a PostgreSQL program, as the `postgres` user when we are root (PostgreSQL refuses to run as root)."""
    done = subprocess.run(
        ["runuser", "-u", "postgres", "--", *argv] if os.geteuid() == 0 else argv,
        capture_output=True,
        text=True,
        timeout=START_TIMEOUT_S,
    )
    if done.returncode != 0:
        log = folder / "log"
        raise AssertionError(f"{argv} failed: {done.stderr}\n{log.read_text() if log.exists() else ''}")


@contextmanager
def postgres_server(bin_dir: Path) -> Iterator[PostgresServer]:
    """Initialises a cluster (trust authentication, no fsync: throwaway) and runs it until the block ends."""
    folder = Path(tempfile.mkdtemp(prefix="grader-postgres-"))
    if os.geteuid() == 0:
        owner = pwd.getpwnam("postgres")
        os.chown(folder, owner.pw_uid, owner.pw_gid)
    data, port = folder / "data", free_port()
    pg_ctl = [str(bin_dir / "pg_ctl"), "-D", str(data), "-w"]
    try:
        _run([str(bin_dir / "initdb"), "-D", str(data), "-U", USER, "--auth=trust", "-E", "UTF8", "--no-sync"], folder)
        options = f"-c listen_addresses=127.0.0.1 -p {port} -k {folder} -c fsync=off -c timezone={TIMEZONE}"
        _run([*pg_ctl, "-l", str(folder / "log"), "-o", options, "start"], folder)
        try:
            yield PostgresServer(port)
        finally:
            _run([*pg_ctl, "-m", "immediate", "stop"], folder)
    finally:
        shutil.rmtree(folder, ignore_errors=True)
