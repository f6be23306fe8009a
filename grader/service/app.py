"""The web application of `grade serve` (Starlette): assembles the routes, the middleware and the workers' lifespan."""

from __future__ import annotations

import logging
import secrets
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.middleware.sessions import SessionMiddleware
from starlette.requests import Request
from starlette.responses import Response

from grader.service import routes_api, routes_pages, routes_signin, routes_staff
from grader.service.course import Course
from grader.service.routing import Served, error
from grader.service.worker import Workers

log = logging.getLogger("grader.service")
SESSION_DAYS = 120  # a browser stays signed in for a term
PAGE_CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src data:; connect-src 'self'; form-action 'self'"
)


def create_app(course: Course, workers: Workers | None, secret_key: str, https: bool, grace_s: float = 30) -> Starlette:
    """The application; `workers` (None in tests of the routes alone) start and stop with it."""
    routes = [*routes_api.ROUTES, *routes_pages.ROUTES, *routes_signin.ROUTES, *routes_staff.ROUTES]
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
    app = Starlette(
        routes=routes, middleware=middleware, lifespan=lifespan, exception_handlers={HTTPException: refused}
    )
    app.state.served = Served(course, workers, grace_s)
    return app


@asynccontextmanager
async def lifespan(app: Starlette) -> AsyncIterator[None]:
    """Starts the workers with the application, and on shutdown lets those running finish within the grace."""
    served: Served = app.state.served
    if served.workers is not None:
        served.workers.start()
    log.info("serving %s", served.course.rubric.title)
    yield
    if served.workers is not None:
        log.info("stopping: no new submission is started; waiting up to %g s for those running", served.grace_s)
        await run_in_threadpool(served.workers.stop, served.grace_s)


async def refused(request: Request, exc: Exception) -> Response:
    """Starlette's own refusals (a malformed multipart body, a wrong method), in the service's format."""
    assert isinstance(exc, HTTPException)
    return error(request, str(exc.detail), exc.status_code)


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
