"""The course staff's pages: every student's submissions, the class files, and re-scoring everyone."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import FileResponse, RedirectResponse, Response
from starlette.routing import Route

from grader.service.auth import csrf_valid
from grader.service.course import upload_view
from grader.service.db import Upload
from grader.service.routing import FORM_EXPIRED, error, page, served, staff_refusal


async def staff(request: Request) -> Response:
    if (refusal := staff_refusal(request)) is not None:
        return refusal
    course = served(request).course
    with course.db() as s:
        uploads = list(s.scalars(select(Upload).order_by(Upload.student, Upload.id.desc())))
    histories: dict[str, list[dict[str, Any]]] = {}
    for upload in uploads:
        histories.setdefault(upload.student, []).append(upload_view(course, upload, staff=True))
    notice = request.session.pop("notice", "")
    outputs = course.data.class_outputs
    files = [
        p.name for p in (outputs.index, outputs.grades_csv, outputs.canvas_csv, outputs.grades_json) if p.is_file()
    ]
    pairs = sorted(p.name for p in outputs.near_copies_dir.glob("*.html"))
    return page("staff.html.j2", request, histories=histories, files=files, pairs=pairs, notice=notice)


async def class_file(request: Request) -> Response:
    if (refusal := staff_refusal(request)) is not None:
        return refusal
    root = served(request).course.data.class_outputs.root.resolve()
    path = (root / request.path_params["path"]).resolve()
    if not path.is_relative_to(root) or not path.is_file():
        return error(request, "no such file", 404)
    return FileResponse(path)


async def rescore(request: Request) -> Response:
    if (refusal := staff_refusal(request)) is not None:
        return refusal
    async with request.form(max_files=0, max_fields=2) as form:
        csrf = form.get("csrf")
    if not csrf_valid(request.session, csrf):
        return error(request, FORM_EXPIRED, 403)
    course, workers = served(request).course, served(request).workers
    if workers is None:
        return error(request, "this service grades nothing", 503)
    done = await run_in_threadpool(workers.rescore_everyone)
    course.follow(workers.grader.session.rubric)
    request.session["notice"] = f"Re-scored {done} submission(s) under the rubric as it is now."
    return RedirectResponse("/staff", status_code=303)


ROUTES = [
    Route("/staff", staff, methods=["GET"]),
    Route("/staff/rescore", rescore, methods=["POST"]),
    Route("/staff/class/{path:path}", class_file, methods=["GET"]),
]
