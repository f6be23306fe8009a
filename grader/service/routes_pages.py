"""The students' browser pages: their submissions, the upload form, their reports, and the pages' static files."""

from __future__ import annotations

from importlib import resources

from sqlalchemy import select
from starlette.requests import Request
from starlette.responses import FileResponse, RedirectResponse, Response
from starlette.routing import Route

from grader.service.course import upload_view
from grader.service.db import Upload
from grader.service.receive import receive
from grader.service.routing import NOT_SIGNED_IN, error, own_upload, page, served, who
from grader.service.uploads import UploadRefused


async def home(request: Request) -> Response:
    identity = who(request)
    if identity is None:
        return page("signed_out.html.j2", request)
    if identity.staff:
        return RedirectResponse("/staff", status_code=303)
    course = served(request).course
    with course.db() as s:
        uploads = list(s.scalars(select(Upload).where(Upload.student == identity.student).order_by(Upload.id.desc())))
    notice = request.session.pop("notice", "")
    return page(
        "student.html.j2",
        request,
        student=identity.student,
        uploads=[upload_view(course, u) for u in uploads],
        notice=notice,
        max_mb=course.max_upload_bytes // 2**20,
    )


async def submit(request: Request) -> Response:
    identity = who(request)
    if identity is None:
        return error(request, NOT_SIGNED_IN, 401)
    if request.headers.get("authorization"):
        return error(request, "use POST /api/submissions with a token", 400)
    try:
        upload_id = await receive(request, identity)
    except UploadRefused as exc:
        return error(request, str(exc), exc.status)
    request.session["notice"] = f"Submission {upload_id} received; it is graded in turn."
    return RedirectResponse("/", status_code=303)


async def report(request: Request) -> Response:
    identity = who(request)
    if identity is None:
        return error(request, NOT_SIGNED_IN, 401)
    course = served(request).course
    upload = own_upload(request, identity)
    path = course.data.report(upload.id, course.hides() and not identity.staff) if upload else None
    if path is None or not path.is_file():
        return error(request, "no such report", 404)
    return FileResponse(path, media_type="text/html; charset=utf-8")


async def static(request: Request) -> Response:
    name = request.path_params["name"]
    if name not in ("service.js", "service.css"):
        return error(request, "no such file", 404)
    text = (resources.files("grader.service") / "static" / name).read_text(encoding="utf-8")
    kind = "text/javascript" if name.endswith(".js") else "text/css"
    return Response(text, media_type=kind, headers={"Cache-Control": "max-age=3600"})


ROUTES = [
    Route("/", home, methods=["GET"]),
    Route("/submit", submit, methods=["POST"]),
    Route("/submissions/{id:int}/report", report, methods=["GET"]),
    Route("/static/{name}", static, methods=["GET"]),
    Route("/favicon.ico", lambda _: Response(status_code=204), methods=["GET"]),
]
