"""What every route shares: the served course and workers (kept in `app.state`), the caller, pages and errors."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from typing import Any

from jinja2 import Environment, PackageLoader, select_autoescape
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response

from grader.service.auth import Identity, csrf_token, identify, identify_digest
from grader.service.course import Course
from grader.service.db import Upload, utc
from grader.service.worker import Workers

TOKEN_NEEDED = "a valid token is needed: Authorization: Bearer <token>"
NOT_SIGNED_IN = "you are not signed in: open your personal link"
FORM_EXPIRED = "the form has expired; reload the page"


@dataclass(frozen=True, slots=True)
class Served:
    """What the application serves, kept in `app.state.served`: the course, and the workers that grade
    (None in tests of the routes alone) with how long they may finish on shutdown."""

    course: Course
    workers: Workers | None
    grace_s: float


def served(request: Request) -> Served:
    """The application's `Served`, as `create_app` put it in its state."""
    value: Served = request.app.state.served
    return value


@cache
def templates() -> Environment:
    env = Environment(loader=PackageLoader("grader.service", "templates"), autoescape=select_autoescape(default=True))
    env.filters["when"] = lambda moment: utc(moment).strftime("%Y-%m-%d %H:%M UTC") if moment else ""
    env.filters["pts"] = lambda value: "" if value is None else f"{value:g}"
    return env


def error(request: Request, message: str, status: int) -> Response:
    """A refusal: JSON under /api/, else the message page."""
    if request.url.path.startswith("/api/"):
        return JSONResponse({"error": message}, status_code=status)
    return HTMLResponse(templates().get_template("message.html.j2").render(message=message), status_code=status)


def page(name: str, request: Request, status: int = 200, **values: Any) -> HTMLResponse:
    """The template `name` rendered with `values` and what every page shows (its form token, the rubric)."""
    course = served(request).course
    values.update(csrf=csrf_token(request.session), rubric=course.rubric, hides=course.hides())
    return HTMLResponse(templates().get_template(name).render(**values), status_code=status)


def who(request: Request) -> Identity | None:
    """The caller: a Bearer token (API clients), else the signed-in browser's session."""
    db = served(request).course.db
    header = request.headers.get("authorization", "")
    if header:
        scheme, _, token = header.partition(" ")
        return identify(db, token.strip() if scheme.lower() == "bearer" else None)
    digest = request.session.get("token")
    return identify_digest(db, digest) if isinstance(digest, str) else None


def staff_refusal(request: Request) -> Response | None:
    """None for course staff; anyone else is refused: 401 when signed out, 404 (nothing here) for a student."""
    identity = who(request)
    if identity is None or not identity.staff:
        return error(request, "this page is for course staff", 404 if identity else 401)
    return None


def own_upload(request: Request, identity: Identity) -> Upload | None:
    """The submission the path names (`id`), if `identity` may see it."""
    with served(request).course.db() as s:
        upload = s.get(Upload, request.path_params["id"])
    if upload is None or not (identity.staff or upload.student == identity.student):
        return None  # another student's submission is as unknown as one that does not exist
    return upload
