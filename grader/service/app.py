"""The web application of `grade serve` (Starlette): the students' and staff's pages and the JSON API."""

from __future__ import annotations

import logging
import secrets
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

from jinja2 import Environment, PackageLoader, select_autoescape
from sqlalchemy import func, select
from sqlalchemy.orm import sessionmaker
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import UploadFile
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.middleware.sessions import SessionMiddleware
from starlette.requests import Request
from starlette.responses import FileResponse, HTMLResponse, JSONResponse, RedirectResponse, Response
from starlette.routing import Route

from grader.rubric.model import Rubric
from grader.service.auth import Identity, csrf_token, csrf_valid, identify, identify_digest, token_digest
from grader.service.db import QUEUED, RUNNING, Upload, now, utc
from grader.service.queue import Queue
from grader.service.uploads import UploadRefused, discard, store_notebook
from grader.service.worker import Workers, report_path
from grader.visibility import hides_now

log = logging.getLogger("grader.service")
SESSION_DAYS = 120  # a browser stays signed in for a term
CLASS_FILES = ("index.html", "grades.csv", "canvas.csv", "grades.json")
PAGE_CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src data:; connect-src 'self'; form-action 'self'"
)


@dataclass(slots=True)
class Course:
    """What the routes serve from: the rubric, the database and its queue, and the folders under --data."""

    rubric: Rubric
    db: sessionmaker[Any]
    queue: Queue
    data: Path
    max_upload_bytes: int

    @property
    def uploads(self) -> Path:
        return self.data / "uploads"

    @property
    def reports(self) -> Path:
        return self.data / "reports"

    @property
    def class_dir(self) -> Path:
        return self.data / "class"

    def follow(self, rubric: Rubric) -> None:
        """Serves under `rubric` from now on (re-read for a re-score): its due date, visibility and limit."""
        self.rubric = rubric
        self.queue.due, self.queue.per_hour = rubric.due, rubric.service.submissions_per_hour

    def hides(self) -> bool:
        return hides_now(self.rubric, now())


def _environment() -> Environment:
    env = Environment(loader=PackageLoader("grader.service", "templates"), autoescape=select_autoescape(default=True))
    env.filters["when"] = lambda moment: utc(moment).strftime("%Y-%m-%d %H:%M UTC") if moment else ""
    env.filters["pts"] = lambda value: "" if value is None else f"{value:g}"
    return env


def _error(request: Request, message: str, status: int) -> Response:
    if request.url.path.startswith("/api/"):
        return JSONResponse({"error": message}, status_code=status)
    return HTMLResponse(_environment().get_template("message.html.j2").render(message=message), status_code=status)


def upload_view(course: Course, upload: Upload, staff: bool = False) -> dict[str, Any]:
    """A submission as the API and the pages show it: before the due date, hidden checks' points left out."""
    hides = course.hides() and not staff
    return {
        "id": upload.id,
        "filename": upload.filename,
        "received_at": utc(upload.received_at).isoformat(timespec="seconds"),
        "late": upload.late,
        "status": upload.status,
        "place": course.queue.place(upload.id) if upload.status == QUEUED else None,
        "cell": course.queue.cell(upload.id) if upload.status == RUNNING else None,
        "points": upload.points_shown if hides else upload.points,
        "max_points": upload.max_points if upload.max_points is not None else course.rubric.max_total,
        "message": upload.message,
        "report": f"/submissions/{upload.id}/report" if upload.status not in (QUEUED, RUNNING) else None,
    }


def create_app(course: Course, workers: Workers | None, secret_key: str, https: bool, grace_s: float = 30) -> Starlette:
    """The application; `workers` (None in tests of the routes alone) start and stop with it."""
    env = _environment()

    def who(request: Request) -> Identity | None:
        """The caller: a Bearer token (API clients), else the signed-in browser's session."""
        header = request.headers.get("authorization", "")
        if header:
            scheme, _, token = header.partition(" ")
            return identify(course.db, token.strip() if scheme.lower() == "bearer" else None)
        digest = request.session.get("token")
        return identify_digest(course.db, digest) if isinstance(digest, str) else None

    def own_upload(identity: Identity, upload_id: int) -> Upload | None:
        with course.db() as s:
            upload = s.get(Upload, upload_id)
        if upload is None or not (identity.staff or upload.student == identity.student):
            return None  # another student's submission is as unknown as one that does not exist
        return upload

    def page(name: str, request: Request, status: int = 200, **values: Any) -> HTMLResponse:
        values.update(csrf=csrf_token(request.session), rubric=course.rubric, hides=course.hides())
        return HTMLResponse(env.get_template(name).render(**values), status_code=status)

    async def receive(request: Request, identity: Identity) -> int:
        """Reads the upload (refused unread when it declares too many bytes), stores it and queues it."""
        if identity.student is None:
            raise UploadRefused("staff links cannot submit notebooks; use a student's link", 403)
        length = request.headers.get("content-length")
        if length is None or not length.isdigit():
            raise UploadRefused("the upload must declare its size (Content-Length)", 411)
        if int(length) > course.max_upload_bytes + 64 * 1024:
            raise UploadRefused(
                f"the upload is larger than {course.max_upload_bytes // 2**20} MB; is it a notebook?", 413
            )
        async with request.form(max_files=1, max_fields=4) as form:
            upload = form.get("notebook")
            if not isinstance(upload, UploadFile):
                raise UploadRefused("the upload has no file in the field `notebook`")
            content = await upload.read(course.max_upload_bytes + 1)
            if len(content) > course.max_upload_bytes:
                raise UploadRefused(f"the notebook is larger than {course.max_upload_bytes // 2**20} MB", 413)
            if request.headers.get("authorization") is None and not csrf_valid(request.session, form.get("csrf")):
                raise UploadRefused("the form has expired; reload the page and submit again", 403)
            filename = upload.filename
        limit = course.rubric.limits.notebook_bytes
        stored = await run_in_threadpool(store_notebook, course.uploads, filename or "", content, limit)
        try:
            upload_id = await run_in_threadpool(course.queue.accept, identity.student, stored)
        except UploadRefused:
            discard(course.uploads, stored)
            raise
        log.info("submission %d of %s accepted (%d bytes)", upload_id, identity.student, len(content))
        if workers is not None:
            workers.wake.set()
        return upload_id

    # ------------------------------------------------------------------------------------------------ API

    async def api_submit(request: Request) -> Response:
        identity = who(request)
        if identity is None or not request.headers.get("authorization"):
            return _error(request, "a valid token is needed: Authorization: Bearer <token>", 401)
        try:
            upload_id = await receive(request, identity)
        except UploadRefused as exc:
            return _error(request, str(exc), exc.status)
        return JSONResponse({"id": upload_id}, status_code=202)

    async def api_list(request: Request) -> Response:
        identity = who(request)
        if identity is None:
            return _error(request, "a valid token is needed: Authorization: Bearer <token>", 401)
        with course.db() as s:
            query = select(Upload).order_by(Upload.id)
            if not identity.staff:
                query = query.where(Upload.student == identity.student)
            uploads = list(s.scalars(query))
        return JSONResponse({"submissions": [upload_view(course, u, identity.staff) for u in uploads]})

    async def api_one(request: Request) -> Response:
        identity = who(request)
        if identity is None:
            return _error(request, "a valid token is needed: Authorization: Bearer <token>", 401)
        upload = own_upload(identity, request.path_params["id"])
        if upload is None:
            return _error(request, "no such submission", 404)
        view = upload_view(course, upload, identity.staff)
        return JSONResponse(view)

    async def api_health(request: Request) -> Response:
        with course.db() as s:
            counts = dict(s.execute(select(Upload.status, func.count()).group_by(Upload.status)).tuples().all())
        return JSONResponse(
            {
                "status": "ok",
                "queued": counts.get(QUEUED, 0),
                "running": counts.get(RUNNING, 0),
                "homework": course.rubric.title,
            }
        )

    # ------------------------------------------------------------------------------------------------ pages

    async def home(request: Request) -> Response:
        identity = who(request)
        if identity is None:
            return page("signed_out.html.j2", request)
        if identity.staff:
            return RedirectResponse("/staff", status_code=303)
        with course.db() as s:
            uploads = list(
                s.scalars(select(Upload).where(Upload.student == identity.student).order_by(Upload.id.desc()))
            )
        notice = request.session.pop("notice", "")
        return page(
            "student.html.j2",
            request,
            student=identity.student,
            uploads=[upload_view(course, u) for u in uploads],
            notice=notice,
            max_mb=course.max_upload_bytes // 2**20,
        )

    async def login_form(request: Request) -> Response:
        return page("login.html.j2", request)

    async def login(request: Request) -> Response:
        async with request.form(max_files=0, max_fields=4) as form:
            token, csrf = form.get("token"), form.get("csrf")
        if not csrf_valid(request.session, csrf):
            return _error(request, "the sign-in form has expired; open your personal link again", 403)
        identity = identify(course.db, token if isinstance(token, str) else None)
        if identity is None or not isinstance(token, str):
            return _error(
                request, "this link does not sign anyone in: ask your course staff for your personal link", 401
            )
        request.session.clear()
        request.session["token"] = token_digest(token)
        log.info("%s signed in", "staff" if identity.staff else identity.student)
        return RedirectResponse("/", status_code=303)

    async def logout(request: Request) -> Response:
        async with request.form(max_files=0, max_fields=2) as form:
            csrf = form.get("csrf")
        if not csrf_valid(request.session, csrf):
            return _error(request, "the form has expired; reload the page", 403)
        request.session.clear()
        return RedirectResponse("/", status_code=303)

    async def submit(request: Request) -> Response:
        identity = who(request)
        if identity is None:
            return _error(request, "you are not signed in: open your personal link", 401)
        if request.headers.get("authorization"):
            return _error(request, "use POST /api/submissions with a token", 400)
        try:
            upload_id = await receive(request, identity)
        except UploadRefused as exc:
            return _error(request, str(exc), exc.status)
        request.session["notice"] = f"Submission {upload_id} received; it is graded in turn."
        return RedirectResponse("/", status_code=303)

    async def report(request: Request) -> Response:
        identity = who(request)
        if identity is None:
            return _error(request, "you are not signed in: open your personal link", 401)
        upload = own_upload(identity, request.path_params["id"])
        path = report_path(course.reports, upload.id, course.hides() and not identity.staff) if upload else None
        if path is None or not path.is_file():
            return _error(request, "no such report", 404)
        return FileResponse(path, media_type="text/html; charset=utf-8")

    async def staff(request: Request) -> Response:
        identity = who(request)
        if identity is None or not identity.staff:
            return _error(request, "this page is for course staff", 404 if identity else 401)
        with course.db() as s:
            uploads = list(s.scalars(select(Upload).order_by(Upload.student, Upload.id.desc())))
        histories: dict[str, list[dict[str, Any]]] = {}
        for upload in uploads:
            histories.setdefault(upload.student, []).append(upload_view(course, upload, staff=True))
        notice = request.session.pop("notice", "")
        files = [name for name in CLASS_FILES if (course.class_dir / name).is_file()]
        pairs = sorted(p.name for p in (course.class_dir / "near-copies").glob("*.html"))
        return page("staff.html.j2", request, histories=histories, files=files, pairs=pairs, notice=notice)

    async def class_file(request: Request) -> Response:
        identity = who(request)
        if identity is None or not identity.staff:
            return _error(request, "this page is for course staff", 404 if identity else 401)
        root = course.class_dir.resolve()
        path = (root / request.path_params["path"]).resolve()
        if not path.is_relative_to(root) or not path.is_file():
            return _error(request, "no such file", 404)
        return FileResponse(path)

    async def rescore(request: Request) -> Response:
        identity = who(request)
        if identity is None or not identity.staff:
            return _error(request, "this page is for course staff", 404 if identity else 401)
        async with request.form(max_files=0, max_fields=2) as form:
            csrf = form.get("csrf")
        if not csrf_valid(request.session, csrf):
            return _error(request, "the form has expired; reload the page", 403)
        if workers is None:
            return _error(request, "this service grades nothing", 503)
        done = await run_in_threadpool(workers.rescore_everyone)
        course.follow(workers.grader.session.rubric)
        request.session["notice"] = f"Re-scored {done} submission(s) under the rubric as it is now."
        return RedirectResponse("/staff", status_code=303)

    async def static(request: Request) -> Response:
        name = request.path_params["name"]
        if name not in ("service.js", "service.css"):
            return _error(request, "no such file", 404)
        text = (resources.files("grader.service") / "static" / name).read_text(encoding="utf-8")
        kind = "text/javascript" if name.endswith(".js") else "text/css"
        return Response(text, media_type=kind, headers={"Cache-Control": "max-age=3600"})

    @asynccontextmanager
    async def lifespan(_: Starlette) -> AsyncIterator[None]:
        if workers is not None:
            workers.start()
        log.info("serving %s", course.rubric.title)
        yield
        if workers is not None:
            log.info("stopping: no new submission is started; waiting up to %g s for those running", grace_s)
            await run_in_threadpool(workers.stop, grace_s)

    routes = [
        Route("/api/health", api_health, methods=["GET"]),
        Route("/api/submissions", api_submit, methods=["POST"]),
        Route("/api/submissions", api_list, methods=["GET"]),
        Route("/api/submissions/{id:int}", api_one, methods=["GET"]),
        Route("/", home, methods=["GET"]),
        Route("/login", login_form, methods=["GET"]),
        Route("/login", login, methods=["POST"]),
        Route("/logout", logout, methods=["POST"]),
        Route("/submit", submit, methods=["POST"]),
        Route("/submissions/{id:int}/report", report, methods=["GET"]),
        Route("/staff", staff, methods=["GET"]),
        Route("/staff/rescore", rescore, methods=["POST"]),
        Route("/staff/class/{path:path}", class_file, methods=["GET"]),
        Route("/static/{name}", static, methods=["GET"]),
        Route("/favicon.ico", lambda _: Response(status_code=204), methods=["GET"]),
    ]
    middleware = [
        Middleware(AccessLog),
        Middleware(
            SessionMiddleware,
            secret_key=secret_key,
            session_cookie="grader_session",
            max_age=SESSION_DAYS * 86400,
            same_site="lax",
            https_only=https,
        ),
    ]

    async def refused(request: Request, exc: Exception) -> Response:
        """Starlette's own refusals (a malformed multipart body, a wrong method), in the service's format."""
        assert isinstance(exc, HTTPException)
        return _error(request, str(exc.detail), exc.status_code)

    return Starlette(
        routes=routes, middleware=middleware, lifespan=lifespan, exception_handlers={HTTPException: refused}
    )


class AccessLog:
    """Logs each request (method, path, status, time) without its query string or headers, so no token or
    cookie reaches a log; and adds the headers every answer carries."""

    def __init__(self, app: Callable[..., Awaitable[None]]) -> None:
        self.app = app

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.monotonic()
        status = [0]

        async def send_with_headers(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start":
                status[0] = message["status"]
                headers = list(message.get("headers", []))
                path = scope["path"]
                csp = PAGE_CSP if not path.startswith(("/submissions/", "/staff/class/")) else None
                extra = {
                    b"x-content-type-options": b"nosniff",
                    b"referrer-policy": b"no-referrer",
                    b"x-frame-options": b"DENY",
                    b"cache-control": b"no-store",
                }
                if csp:
                    extra[b"content-security-policy"] = csp.encode()
                present = {name.lower() for name, _ in headers}
                headers += [(k, v) for k, v in extra.items() if k not in present]
                message = {**message, "headers": headers}
            await send(message)

        try:
            await self.app(scope, receive, send_with_headers)
        finally:
            log.info("%s %s %d %.0f ms", scope["method"], scope["path"], status[0], (time.monotonic() - started) * 1000)


def secret_key(data: Path) -> str:
    """The key that signs session cookies, made once per course and kept in DATA/secret.key (mode 0600)."""
    path = data / "secret.key"
    if not path.exists():
        data.mkdir(parents=True, exist_ok=True)
        with path.open("x", encoding="ascii") as fh:
            path.chmod(0o600)
            fh.write(secrets.token_urlsafe(48))
    return path.read_text(encoding="ascii").strip()
