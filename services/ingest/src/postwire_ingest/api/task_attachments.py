"""``/v1/tasks/{task_id}/attachments``: the files every message of a batch task carries,
4 MB in all (API.md), changeable until the task starts sending.

A file comes as ``multipart/form-data`` with one file part ``file`` (its filename and
Content-Type are the attachment's), or as JSON ``{filename, content, content_type}`` with
the content in base64, as ``POST /v1/messages`` takes attachments. Both are read here,
after the caller is checked, and judged by ``attachments.py`` as a message's are.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fastapi import APIRouter, Request, Response
from starlette.datastructures import UploadFile

from postwire_common.addresses import check_header_value
from postwire_common.errors import EmptyValue, InvalidValue, SizeExceeded
from postwire_common.http.auth import CurrentPrincipal
from postwire_common.http.body import parse_model, read_body
from postwire_common.http.envelope import ok
from postwire_common.http.routes import ApiRoute
from postwire_common.ids import checked_id
from postwire_ingest import attachments
from postwire_ingest.api.context import IngestContext
from postwire_ingest.api.models import AttachmentIn
from postwire_ingest.compose import Attachment, decode_attachment
from postwire_ingest.limits import (
    MAX_TASK_ATTACHMENT_BYTES,
    MAX_TASK_ATTACHMENT_REQUEST_BYTES,
    MAX_TASK_ATTACHMENTS,
)

MAX_FILENAME_CHARS = 255  # as AttachmentIn's
_MB = f"{MAX_TASK_ATTACHMENT_BYTES // (1024 * 1024)} MB"

UPLOAD_BODY: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "content": {
            "multipart/form-data": {
                "schema": {
                    "title": "TaskAttachmentForm",
                    "type": "object",
                    "properties": {
                        "file": {
                            "type": "string",
                            "contentMediaType": "application/octet-stream",
                            "description": "The file; its part's filename and Content-Type "
                            "are the attachment's.",
                        }
                    },
                    "required": ["file"],
                    "additionalProperties": False,
                }
            },
            "application/json": {"schema": AttachmentIn.model_json_schema()},
        },
    }
}


def file_attachment(filename: str | None, declared: str | None, data: bytes) -> Attachment:
    """A multipart file part, checked as ``compose.decode_attachment`` checks JSON's."""
    if not filename or not filename.strip():
        raise EmptyValue("file: the part needs a filename")
    if len(filename) > MAX_FILENAME_CHARS:
        raise InvalidValue(f"file: the filename is longer than {MAX_FILENAME_CHARS} characters")
    check_header_value("attachment filename", filename)
    attachments.check_filename(filename)
    return Attachment(filename, data, attachments.content_type(filename, declared))


async def read_form(request: Request) -> Attachment:
    async with request.form(
        max_files=1, max_fields=4, max_part_size=MAX_TASK_ATTACHMENT_REQUEST_BYTES
    ) as form:
        for name in form:
            if name != "file":
                raise InvalidValue(f"{name}: unknown form field (send one file part, file)")
        parts = form.getlist("file")
        if not parts:
            raise EmptyValue("file is required (a file part)")
        if len(parts) > 1:
            raise InvalidValue("file: given more than once")
        [part] = parts
        if not isinstance(part, UploadFile):
            raise InvalidValue("file: must be a file part (with a filename)")
        return file_attachment(part.filename, part.content_type, await part.read())


def json_attachment(raw: bytes) -> Attachment:
    body = parse_model(AttachmentIn, raw)
    return decode_attachment(body.filename, body.content, body.content_type)


async def read_attachment(
    request: Request, from_json: Callable[[bytes], Attachment] = json_attachment
) -> Attachment:
    """The body as one attachment: multipart/form-data with ``file``, or JSON (in the
    names ``from_json`` reads: ours, or a vendor's)."""
    kind = request.headers.get("content-type", "").partition(";")[0].strip().lower()
    if kind == "multipart/form-data":
        attachment = await read_form(request)
    else:
        attachment = from_json(await read_body(request, MAX_TASK_ATTACHMENT_REQUEST_BYTES))
    if not attachment.data:
        raise EmptyValue(f"attachment {attachment.filename!r} is empty")
    if len(attachment.data) > MAX_TASK_ATTACHMENT_BYTES:
        raise SizeExceeded(
            f"attachment {attachment.filename!r} is {len(attachment.data)} bytes: a task's "
            f"attachments are at most {_MB} in all"
        )
    return attachment


def router(ctx: IngestContext) -> APIRouter:
    api = APIRouter(prefix="/v1/tasks/{task_id}/attachments", tags=["tasks"], route_class=ApiRoute)
    store = ctx.task_attachments

    @api.get(
        "",
        summary="List a task's attachments",
        description="Oldest first, without their content; `size` is their total in bytes "
        "and `max_size` the most a task may hold.",
        responses={404: {}},
    )
    async def list_(task_id: str, principal: CurrentPrincipal) -> Response:
        rows = await store.list(principal.tenant_id, checked_id(task_id, "task id"))
        total = sum(r["size"] for r in rows)
        return ok({"attachments": rows, "size": total, "max_size": MAX_TASK_ATTACHMENT_BYTES})

    @api.post(
        "",
        status_code=201,
        summary="Attach a file to every message of a task",
        description="multipart/form-data with one file part `file` (the part's filename "
        "and Content-Type are the attachment's; `application/octet-stream` when it has "
        "none), or JSON `{filename, content, content_type}` with `content` in base64, as "
        f"`POST /v1/messages` takes attachments. A task's attachments are at most {_MB} "
        f"in all (`size_exceeded`) and at most {MAX_TASK_ATTACHMENTS} files, no two of "
        "the same name (`invalid_value`, names compared ignoring case). Executable and "
        "script types are refused, by extension and by content type (`invalid_value`). "
        "Only before the task starts sending (`not_available` once it has).",
        responses={404: {}},
        openapi_extra=UPLOAD_BODY,
    )
    async def add(task_id: str, request: Request, principal: CurrentPrincipal) -> Response:
        checked = checked_id(task_id, "task id")
        attachment = await read_attachment(request)
        row = await store.add(
            principal.tenant_id,
            checked,
            attachment.filename,
            attachment.content_type,
            attachment.data,
        )
        return ok(row, status=201)

    @api.delete(
        "/{attachment_id}",
        summary="Remove one attachment from a task",
        description="Only before the task starts sending (`not_available` once it has).",
        responses={404: {}},
    )
    async def delete(task_id: str, attachment_id: str, principal: CurrentPrincipal) -> Response:
        await store.delete(
            principal.tenant_id,
            checked_id(task_id, "task id"),
            checked_id(attachment_id, "attachment id"),
        )
        return ok(None)

    @api.delete(
        "",
        summary="Remove every attachment from a task",
        description="Answers how many were removed. Only before the task starts sending "
        "(`not_available` once it has).",
        responses={404: {}},
    )
    async def clear(task_id: str, principal: CurrentPrincipal) -> Response:
        removed = await store.clear(principal.tenant_id, checked_id(task_id, "task id"))
        return ok({"removed": removed})

    return api
