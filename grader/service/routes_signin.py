"""Signing in and out of the browser pages with a personal link's token."""

from __future__ import annotations

import logging

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from grader.service.auth import csrf_valid, identify, token_digest
from grader.service.routing import FORM_EXPIRED, error, page, served

log = logging.getLogger("grader.service")


async def login_form(request: Request) -> Response:
    return page("login.html.j2", request)


async def login(request: Request) -> Response:
    async with request.form(max_files=0, max_fields=4) as form:
        token, csrf = form.get("token"), form.get("csrf")
    if not csrf_valid(request.session, csrf):
        return error(request, "the sign-in form has expired; open your personal link again", 403)
    identity = identify(served(request).course.db, token if isinstance(token, str) else None)
    if identity is None or not isinstance(token, str):
        return error(request, "this link does not sign anyone in: ask your course staff for your personal link", 401)
    request.session.clear()
    request.session["token"] = token_digest(token)
    log.info("%s signed in", "staff" if identity.staff else identity.student)
    return RedirectResponse("/", status_code=303)


async def logout(request: Request) -> Response:
    async with request.form(max_files=0, max_fields=2) as form:
        csrf = form.get("csrf")
    if not csrf_valid(request.session, csrf):
        return error(request, FORM_EXPIRED, 403)
    request.session.clear()
    return RedirectResponse("/", status_code=303)


ROUTES = [
    Route("/login", login_form, methods=["GET"]),
    Route("/login", login, methods=["POST"]),
    Route("/logout", logout, methods=["POST"]),
]
