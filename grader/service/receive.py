"""Takes a notebook from an upload request (the API's or the page's): reads it within limits, stores and queues it."""

from __future__ import annotations

import logging

from starlette.concurrency import run_in_threadpool
from starlette.datastructures import UploadFile
from starlette.requests import Request

from grader.service.auth import Identity, csrf_valid
from grader.service.routing import served
from grader.service.uploads import UploadRefused, discard, store_notebook

log = logging.getLogger("grader.service")


async def receive(request: Request, identity: Identity) -> int:
    """Reads the upload (refused unread when it declares too many bytes), stores it and queues it."""
    course, workers = served(request).course, served(request).workers
    if identity.student is None:
        raise UploadRefused("staff links cannot submit notebooks; use a student's link", 403)
    length = request.headers.get("content-length")
    if length is None or not length.isdigit():
        raise UploadRefused("the upload must declare its size (Content-Length)", 411)
    if int(length) > course.max_upload_bytes + 64 * 1024:
        raise UploadRefused(f"the upload is larger than {course.max_upload_bytes // 2**20} MB; is it a notebook?", 413)
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
    stored = await run_in_threadpool(store_notebook, course.data.uploads, filename or "", content, limit)
    try:
        upload_id = await run_in_threadpool(course.queue.accept, identity.student, stored)
    except UploadRefused:
        discard(course.data.uploads, stored)
        raise
    log.info("submission %d of %s accepted (%d bytes)", upload_id, identity.student, len(content))
    if workers is not None:
        workers.wake.set()
    return upload_id
