"""The JSON API under /api/: submit a notebook with a token, list and follow submissions, the service's health."""

from __future__ import annotations

from sqlalchemy import func, select
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from grader.service.course import upload_view
from grader.service.db import QUEUED, RUNNING, Upload
from grader.service.receive import receive
from grader.service.routing import TOKEN_NEEDED, error, own_upload, served, who
from grader.service.uploads import UploadRefused


async def api_submit(request: Request) -> Response:
    identity = who(request)
    if identity is None or not request.headers.get("authorization"):
        return error(request, TOKEN_NEEDED, 401)
    try:
        upload_id = await receive(request, identity)
    except UploadRefused as exc:
        return error(request, str(exc), exc.status)
    return JSONResponse({"id": upload_id}, status_code=202)


async def api_list(request: Request) -> Response:
    identity = who(request)
    if identity is None:
        return error(request, TOKEN_NEEDED, 401)
    course = served(request).course
    with course.db() as s:
        query = select(Upload).order_by(Upload.id)
        if not identity.staff:
            query = query.where(Upload.student == identity.student)
        uploads = list(s.scalars(query))
    return JSONResponse({"submissions": [upload_view(course, u, identity.staff) for u in uploads]})


async def api_one(request: Request) -> Response:
    identity = who(request)
    if identity is None:
        return error(request, TOKEN_NEEDED, 401)
    upload = own_upload(request, identity)
    if upload is None:
        return error(request, "no such submission", 404)
    return JSONResponse(upload_view(served(request).course, upload, identity.staff))


async def api_health(request: Request) -> Response:
    course = served(request).course
    with course.db() as s:
        counts: dict[str, int] = {
            status: n for status, n in s.execute(select(Upload.status, func.count()).group_by(Upload.status))
        }
    return JSONResponse(
        {
            "status": "ok",
            "queued": counts.get(QUEUED, 0),
            "running": counts.get(RUNNING, 0),
            "homework": course.rubric.title,
        }
    )


ROUTES = [
    Route("/api/health", api_health, methods=["GET"]),
    Route("/api/submissions", api_submit, methods=["POST"]),
    Route("/api/submissions", api_list, methods=["GET"]),
    Route("/api/submissions/{id:int}", api_one, methods=["GET"]),
]
