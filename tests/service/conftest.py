"""Fixtures of the service's tests: a course (rubric, roster, tokens, data folder) and a running `grade serve`."""

from __future__ import annotations

import contextlib
import csv
import io
import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx
import nbformat
import pytest

from grader.service.db import database_url
from tests.conftest import FAST_LIMITS, ROOT, grader_environ

if TYPE_CHECKING:
    from tests.service.postgres import PostgresServer

PER_HOUR = 5  # the test rubric's `service: {submissions_per_hour: N}`
START_TIMEOUT_S = 600  # the first start calibrates on the reference (a real run); later ones take it from the cache
POLL_S = 0.2


def course_rubric(folder: Path, extra: str = "", hidden: bool = False, per_hour: int = PER_HOUR) -> Path:
    """The bundled homework's rubric.yaml, with the service's limit, in `folder` (paths made absolute), and the fast
    rubric's limits, so that its reference run is the other tests'."""
    text = (ROOT / "rubric.yaml").read_text(encoding="utf-8")
    for name, value in FAST_LIMITS.items():
        text, count = re.subn(rf"^  {name}: \d+", f"  {name}: {value}", text, count=1, flags=re.MULTILINE)
        assert count == 1, name
    text = text.replace("reference: reference/", f"reference: {ROOT}/reference/")
    text = text.replace("template: reference/", f"template: {ROOT}/reference/")
    if hidden:  # the whole evaluation section, accuracy threshold included, hidden before the due date
        text = text.replace("  evaluate:\n", "  evaluate:\n    visibility: hidden\n", 1)
    text += f"\nservice:\n  submissions_per_hour: {per_hour}\n{extra}"
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "rubric.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def write_roster(folder: Path, students: list[str]) -> Path:
    path = folder / "roster.csv"
    path.write_text("student,name\n" + "".join(f"{s},{s.title()}\n" for s in students), encoding="utf-8")
    return path


def tiny_notebook(n: int) -> bytes:
    """A real notebook that runs in a second and earns little: it goes through the whole pipeline all the same."""
    cell = nbformat.v4.new_code_cell(f"submission = {n}\nprint(submission)", id=f"cell-{n}")
    nb = nbformat.v4.new_notebook(cells=[cell])
    nb.metadata["kernelspec"] = {"name": "python3", "language": "python", "display_name": "Python 3"}
    return nbformat.writes(nb).encode()


def tokens(data: Path, roster: Path | None, *extra: str) -> dict[str, str]:
    """`grade serve tokens` run as a user would: {student (or "staff"): token}."""
    args = ["tokens", "--data", str(data), *(["--roster", str(roster)] if roster else []), *extra]
    done = subprocess.run(
        [sys.executable, "-m", "grader", "serve", *args], cwd=ROOT, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    rows = list(csv.DictReader(io.StringIO(done.stdout)))
    return {row["student"]: row["token"] for row in rows}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Server:
    """A `grade serve` process on 127.0.0.1."""

    proc: subprocess.Popen[bytes]
    url: str
    log: Path

    def client(self, token: str | None = None) -> httpx.Client:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        return httpx.Client(base_url=self.url, headers=headers, timeout=30)

    def kill(self) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait(timeout=60)


def start_server(data: Path, rubric: Path, roster: Path, dataset: Path, cache: Path, *extra: str) -> Server:
    """Starts `grade serve` in its own process group and waits (bounded) for its health endpoint."""
    port = free_port()
    log = data.parent / f"serve-{port}.log"
    argv = [sys.executable, "-m", "grader", "serve", "--roster", str(roster), "--data", str(data)]
    argv += ["--rubric", str(rubric), "--dataset", str(dataset), "--port", str(port), "--cache", str(cache), *extra]
    with log.open("wb") as out:
        proc = subprocess.Popen(
            argv, cwd=ROOT, env=grader_environ(cache), stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )
    server = Server(proc, f"http://127.0.0.1:{port}", log)
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"grade serve exited with {proc.returncode}: {log.read_text()[-3000:]}")
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(f"{server.url}/api/health", timeout=5).status_code == 200:
                return server
        time.sleep(0.5)
    server.kill()
    raise AssertionError(f"grade serve did not answer in {START_TIMEOUT_S} s: {log.read_text()[-3000:]}")


@contextlib.contextmanager
def running(data: Path, rubric: Path, roster: Path, dataset: Path, cache: Path, *extra: str) -> Iterator[Server]:
    server = start_server(data, rubric, roster, dataset, cache, *extra)
    try:
        yield server
    finally:
        server.kill()


def wait_until_finished(client: httpx.Client, ids: list[int], timeout_s: float) -> list[dict[str, Any]]:
    """Polls the caller's submissions until every one of `ids` is graded or error (bounded in time)."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        listed = client.get("/api/submissions").json()["submissions"]
        mine = [s for s in listed if s["id"] in ids]
        if len(mine) == len(ids) and all(s["status"] in ("graded", "error") for s in mine):
            return mine
        time.sleep(POLL_S * 5)
    raise AssertionError(f"not finished in {timeout_s} s: {json.dumps(listed)[:2000]}")


@pytest.fixture(scope="session")
def postgres() -> Iterator[PostgresServer]:
    """A throwaway PostgreSQL server for the session (`make test` installs PostgreSQL; elsewhere: skipped)."""
    from tests.service.postgres import installed, postgres_server  # it uses free_port, above

    bin_dir = installed()
    if bin_dir is None:
        pytest.skip("PostgreSQL is not installed (apt-get install postgresql; `make test` does)")
    with postgres_server(bin_dir) as server:
        yield server


@pytest.fixture(params=["sqlite", "postgresql"])
def database(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """An empty database's SQLAlchemy URL: SQLite in a folder, or a new one on the PostgreSQL server (its URL
    written as a course admin writes it, postgresql://..., mapped as `--database` maps it)."""
    if request.param == "sqlite":
        return database_url(None, tmp_path)
    server: PostgresServer = request.getfixturevalue("postgres")
    return database_url(server.new_database(), tmp_path)
