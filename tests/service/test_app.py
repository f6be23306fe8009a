"""The service's routes against bad input: each answer is a clear error, and nothing is stored or queued.

The routes run in-process (httpx through Starlette's TestClient) without workers: what is tested is what the
service accepts, refuses and shows, not grading (see test_queue.py and test_worker.py for that).
"""

from __future__ import annotations

import io
import logging
import re
import zipfile
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select
from starlette.testclient import TestClient

from grader.rubric.load import load_rubric
from grader.service.app import create_app
from grader.service.auth import enrol, issue_staff_token, issue_tokens
from grader.service.course import Course
from grader.service.data_folder import DataFolder
from grader.service.db import Student, Upload, open_database, sqlite_url
from grader.service.queue import Queue
from tests.service.conftest import PER_HOUR, course_rubric, tiny_notebook

UNAUTHORIZED = {"error": "a valid token is needed: Authorization: Bearer <token>"}
MAX_UPLOAD = 2 * 2**20


class Setup:
    """A course in `folder`: two students and staff with tokens, and the application without workers."""

    def __init__(self, folder: Path, capacity: int = 100, database: str | None = None) -> None:
        self.data = folder / "data"
        self.data.mkdir(parents=True)
        rubric = load_rubric(course_rubric(folder))
        self.db = open_database(database or sqlite_url(self.data))
        enrol(self.db, {s: Student(id=s, name=s, email="") for s in ("ada", "bob")})
        self.tokens = {link.student: link.token for link in issue_tokens(self.db, ["ada", "bob"], "http://x", False)}
        self.tokens["staff"] = issue_staff_token(self.db, "http://x", False).token
        self.queue = Queue(self.db, capacity, rubric.service.submissions_per_hour, rubric.due)
        course = Course(rubric, self.db, self.queue, DataFolder(self.data), MAX_UPLOAD)
        self.app = create_app(course, None, "test-secret-key", https=False)

    def client(self, who: str | None = None, token: str | None = None) -> TestClient:
        client = TestClient(self.app, base_url="http://127.0.0.1")
        token = token or (self.tokens[who] if who else None)
        if token:
            client.headers["Authorization"] = f"Bearer {token}"
        return client

    def state(self) -> tuple[list[tuple[Any, ...]], list[str]]:
        """Every submission row and every file under the data folder's uploads: what a refusal must not change."""
        with self.db() as s:
            rows = [(u.id, u.student, u.stored, u.status) for u in s.scalars(select(Upload).order_by(Upload.id))]
        uploads = DataFolder(self.data).uploads
        return rows, sorted(p.name for p in uploads.iterdir()) if uploads.exists() else []


@pytest.fixture
def setup(tmp_path: Path) -> Setup:
    return Setup(tmp_path)


def submit(client: TestClient, content: bytes, filename: str = "hw.ipynb") -> Any:
    """A multipart upload written by hand, so that the file name reaches the service byte for byte (httpx would
    percent-encode a NUL)."""
    boundary = "service-test-boundary"
    head = (
        f"--{boundary}\r\n"
        f'Content-Disposition: form-data; name="notebook"; filename="{filename}"\r\n'
        "Content-Type: application/octet-stream\r\n\r\n"
    )
    body = head.encode("utf-8") + content + f"\r\n--{boundary}--\r\n".encode()
    headers = {"Content-Type": f"multipart/form-data; boundary={boundary}"}
    return client.post("/api/submissions", content=body, headers=headers)


def zip_bytes() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("hw.ipynb", tiny_notebook(1))
    return buffer.getvalue()


def test_an_accepted_notebook_is_stored_and_queued_and_only_its_owner_sees_it(tmp_path: Path, database: str) -> None:
    setup = Setup(tmp_path, database=database)
    answer = submit(setup.client("ada"), tiny_notebook(1))
    assert answer.status_code == 202
    upload_id = answer.json()["id"]
    rows, files = setup.state()
    assert rows == [(upload_id, "ada", files[0], "queued")]
    assert (DataFolder(setup.data).uploads / files[0]).read_bytes() == tiny_notebook(1)
    mine = setup.client("ada").get(f"/api/submissions/{upload_id}")
    assert mine.status_code == 200
    assert mine.json() | {"points": None} == mine.json() and mine.json()["status"] == "queued"
    assert mine.json()["max_points"] == 100
    assert mine.json()["received_at"].endswith("+00:00")  # in UTC, whatever the database's time zone
    assert [s["id"] for s in setup.client("ada").get("/api/submissions").json()["submissions"]] == [upload_id]
    # Another student: the same answer as for an id that does not exist, and an empty list.
    theirs = setup.client("bob").get(f"/api/submissions/{upload_id}")
    unknown = setup.client("bob").get("/api/submissions/999999")
    assert (
        (theirs.status_code, theirs.json())
        == (unknown.status_code, unknown.json())
        == (404, {"error": "no such submission"})
    )
    assert setup.client("bob").get("/api/submissions").json() == {"submissions": []}
    assert setup.client("bob").get(f"/submissions/{upload_id}/report").status_code == 404
    assert [s["id"] for s in setup.client("staff").get("/api/submissions").json()["submissions"]] == [upload_id]


def test_a_running_submission_shows_the_cell_it_is_in(setup: Setup) -> None:
    upload_id = submit(setup.client("ada"), tiny_notebook(1)).json()["id"]
    queue = setup.queue
    claimed = queue.claim()
    assert claimed is not None and claimed.id == upload_id
    assert setup.client("ada").get(f"/api/submissions/{upload_id}").json()["cell"] is None  # no cell started yet
    queue.at_cell(upload_id, 3, 12)
    shown = setup.client("ada").get(f"/api/submissions/{upload_id}").json()
    assert (shown["status"], shown["cell"]) == ("running", [3, 12])
    assert "running (cell 3 of 12)" in setup.client("ada").get("/").text


@pytest.mark.parametrize(
    ("content", "filename", "status", "says"),
    [
        (b"this is not JSON at all", "hw.ipynb", 400, "not valid JSON"),
        (b'{"just": "json"}', "hw.ipynb", 400, "not a Jupyter notebook"),
        (zip_bytes(), "hw.zip", 400, "not a notebook: upload the .ipynb file"),
        (zip_bytes(), "hw.ipynb", 400, "not a Jupyter notebook"),
        (tiny_notebook(1), "../../etc/hw.ipynb", 400, "path separator"),
        (tiny_notebook(1), "hw\x00.ipynb", 400, "control character"),
        (b"", "hw.ipynb", 400, "empty"),
    ],
)
def test_what_is_not_a_notebook_is_refused_with_a_reason(
    setup: Setup, content: bytes, filename: str, status: int, says: str
) -> None:
    before = setup.state()
    answer = submit(setup.client("ada"), content, filename)
    assert answer.status_code == status
    assert says in answer.json()["error"]
    assert setup.state() == before


def test_a_malformed_upload_is_refused_in_json(setup: Setup) -> None:
    client = setup.client("ada")
    before = setup.state()
    headers = {"Content-Type": "multipart/form-data; boundary=x"}
    answer = client.post("/api/submissions", content=b"--x\r\nnot a part header\r\n", headers=headers)
    assert answer.status_code == 400 and answer.json()["error"]
    no_file = client.post("/api/submissions", data={"notebook": "text, not a file"})
    assert (no_file.status_code, no_file.json()) == (400, {"error": "the upload has no file in the field `notebook`"})
    assert client.put("/api/submissions").status_code == 405
    assert setup.state() == before


def test_a_100_mb_upload_is_refused_before_it_is_read(setup: Setup) -> None:
    before = setup.state()
    answer = submit(setup.client("ada"), b"{" + b" " * (100 * 2**20) + b"}")
    assert answer.status_code == 413
    assert "larger than 2 MB" in answer.json()["error"]
    assert setup.state() == before


@pytest.mark.parametrize("token", [None, "", "not-a-token", "x" * 43, "Basic abc"])
def test_a_missing_or_wrong_token_gets_the_same_answer_and_changes_nothing(setup: Setup, token: str | None) -> None:
    before = setup.state()
    client = setup.client()
    if token is not None:
        client.headers["Authorization"] = token if token.startswith("Basic") else f"Bearer {token}"
    answer = submit(client, tiny_notebook(1))
    assert (answer.status_code, answer.json()) == (401, UNAUTHORIZED)
    assert (client.get("/api/submissions").status_code, client.get("/api/submissions/1").status_code) == (401, 401)
    assert setup.state() == before


def test_a_token_of_another_course_signs_nobody_in(setup: Setup, tmp_path: Path) -> None:
    other = Setup(tmp_path / "other-course")
    before = setup.state()
    answer = submit(setup.client(token=other.tokens["ada"]), tiny_notebook(1))
    assert (answer.status_code, answer.json()) == (401, UNAUTHORIZED)
    assert setup.state() == before


def signed_in(setup: Setup, who: str) -> TestClient:
    """A browser session: the sign-in page's form posted with its CSRF token and the personal token."""
    client = setup.client()
    page = client.get("/login").text
    csrf = re.search(r'name="csrf" value="([^"]+)"', page)
    assert csrf is not None
    answer = client.post("/login", data={"csrf": csrf.group(1), "token": setup.tokens[who]}, follow_redirects=False)
    assert answer.status_code == 303
    return client


def csrf_of(page: str) -> str:
    found = re.search(r'name="csrf" value="([^"]+)"', page)
    assert found is not None
    return found.group(1)


def test_a_form_without_its_csrf_token_is_refused(setup: Setup) -> None:
    client = signed_in(setup, "ada")
    before = setup.state()
    files = {"notebook": ("hw.ipynb", tiny_notebook(1), "application/octet-stream")}
    for data in ({}, {"csrf": "forged"}):
        answer = client.post("/submit", files=files, data=data, follow_redirects=False)
        assert answer.status_code == 403
        assert "the form has expired" in answer.text
    assert setup.state() == before
    # The same form with the page's token is accepted: the refusal was the token's.
    csrf = csrf_of(client.get("/").text)
    assert client.post("/submit", files=files, data={"csrf": csrf}, follow_redirects=False).status_code == 303
    assert len(setup.state()[0]) == 1
    # Signing in needs the sign-in page's token too.
    fresh = setup.client()
    assert fresh.post("/login", data={"token": setup.tokens["ada"]}).status_code == 403
    staff = signed_in(setup, "staff")
    assert staff.post("/staff/rescore", data={}).status_code == 403


def test_sixty_submissions_in_a_minute_stop_at_the_rubrics_limit(setup: Setup) -> None:
    client = setup.client("ada")
    answers = [submit(client, tiny_notebook(n)) for n in range(60)]
    assert [a.status_code for a in answers] == [202] * PER_HOUR + [429] * (60 - PER_HOUR)
    assert f"you have submitted {PER_HOUR} notebooks in the last hour" in answers[-1].json()["error"]
    rows, files = setup.state()
    assert len(rows) == len(files) == PER_HOUR
    # Another student's limit is their own.
    assert submit(setup.client("bob"), tiny_notebook(0)).status_code == 202


def test_a_full_queue_refuses_with_a_clear_message(tmp_path: Path) -> None:
    setup = Setup(tmp_path, capacity=2)
    assert [submit(setup.client(s), tiny_notebook(1)).status_code for s in ("ada", "bob")] == [202, 202]
    before = setup.state()
    answer = submit(setup.client("ada"), tiny_notebook(2))
    assert answer.status_code == 503
    assert "the grading queue is full" in answer.json()["error"]
    assert setup.state() == before


def test_health_needs_no_token(setup: Setup) -> None:
    answer = setup.client().get("/api/health")
    assert answer.status_code == 200
    assert answer.json()["status"] == "ok"


def test_staff_pages_are_for_staff_only(setup: Setup) -> None:
    assert setup.client("ada").get("/staff").status_code == 404
    assert setup.client("ada").get("/staff/class/index.html").status_code == 404
    assert setup.client().get("/staff").status_code == 401
    assert setup.client("staff").get("/staff").status_code == 200
    assert setup.client("staff").get("/staff/class/../grader.db").status_code == 404
    assert submit(setup.client("staff"), tiny_notebook(1)).status_code == 403


def test_staff_page_links_the_class_outputs_that_exist(setup: Setup) -> None:
    class_dir = DataFolder(setup.data).class_outputs.root
    (class_dir / "near-copies").mkdir(parents=True)
    for name in ("grades.json", "index.html", "grades.csv", "near-copies/ada+bob.html", "notes.txt"):
        (class_dir / name).write_text(name, encoding="utf-8")
    client = setup.client("staff")
    links = re.findall(r'href="(/staff/class/[^"]+)"', client.get("/staff").text)
    assert links == [
        "/staff/class/index.html",
        "/staff/class/grades.csv",
        "/staff/class/grades.json",
        "/staff/class/near-copies/ada+bob.html",
    ]
    assert [client.get(link).text for link in links] == [
        "index.html",
        "grades.csv",
        "grades.json",
        "near-copies/ada+bob.html",
    ]


def test_no_token_reaches_the_log(setup: Setup, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    client = signed_in(setup, "ada")
    client.get("/")
    submit(setup.client("ada"), tiny_notebook(1))
    setup.client(token="wrong-token").get("/api/submissions")
    logged = "\n".join(record.getMessage() for record in caplog.records)
    assert "POST /login 303" in logged and "POST /api/submissions 202" in logged
    assert setup.tokens["ada"] not in logged
    assert "wrong-token" not in logged
