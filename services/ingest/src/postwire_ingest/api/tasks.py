"""``/v1/tasks``: batch sending tasks (KooMessage's sending tasks), with typed-in
recipients; see ``tasks.py`` for how they run."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import IO, Annotated, Any, Literal

from fastapi import APIRouter, Query, Request, Response
from fastapi.responses import PlainTextResponse
from pydantic import Field
from starlette.datastructures import UploadFile

from postwire_common.addresses import parse_mailbox
from postwire_common.errors import (
    EmptyValue,
    InvalidValue,
    MissingMacros,
    PostwireError,
    SizeExceeded,
)
from postwire_common.http.auth import CurrentPrincipal
from postwire_common.http.body import form_schema, parse_fields, parse_model, read_body
from postwire_common.http.cursors import decode_cursor, next_cursor
from postwire_common.http.envelope import ok
from postwire_common.http.routes import ApiRoute
from postwire_common.identity import Principal
from postwire_common.ids import checked_id, new_id
from postwire_common.instants import Instant
from postwire_ingest.api.context import IngestContext
from postwire_ingest.api.models import RecipientIn, Strict
from postwire_ingest.limits import MAX_TASK_FILE_BYTES
from postwire_ingest.sending import SENDING_STATES, check_label
from postwire_ingest.task_files import FileFormat, RowError, read_header, rows, sniff
from postwire_ingest.task_store import NewTask, Upload
from postwire_ingest.tasks import (
    MAX_TYPED_RECIPIENTS,
    sample_csv,
    sample_xlsx,
    typed_recipients,
)
from postwire_ingest.templates import Template, check_type, check_values, used_params

MAX_SCHEDULE_AHEAD = timedelta(days=365)
XLSX_TYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
MAX_TYPED_TASK_BYTES = 2 * 1024 * 1024  # ten recipients, each with 15 values


def _check_header(file: IO[bytes], params: tuple[str, ...]) -> FileFormat:
    """The file's format, after its header is checked against the template's
    parameters (``missing_macros`` before anything is stored); the file is rewound."""
    fmt = sniff(file.read(8192))
    file.seek(0)
    reader = rows(file, fmt)
    try:
        first = next(reader, None)
    except RowError as exc:
        raise InvalidValue(f"file: {exc}") from None
    except PostwireError:
        raise
    except Exception as exc:  # a broken file, in a way the reader does not name
        raise InvalidValue(f"file: not a readable CSV or XLSX ({type(exc).__name__})") from None
    finally:
        reader.close()
        file.seek(0)
    if first is None:
        raise EmptyValue("file: empty (the first row is the header)")
    read_header(first[1], params)
    return fmt


class TaskFields(Strict):
    name: str = Field(min_length=1, max_length=64, description="Task name.")
    template_id: str = Field(max_length=64, description="An approved template of yours or public.")
    subject: str | None = Field(
        None, min_length=1, max_length=256, description="Replaces the template's subject."
    )
    sender: str = Field(alias="from", description="A sender address of yours.")
    label: str | None = Field(None, description="Label of every message (made if new).")
    send_at: Instant | None = Field(None, description="When to start; now when absent.")


class CreateTask(TaskFields):
    recipients: list[str | RecipientIn] = Field(
        min_length=1,
        max_length=MAX_TYPED_RECIPIENTS,
        description=f"At most {MAX_TYPED_RECIPIENTS} typed in, addresses or "
        "{address, variables}.",
    )


RECIPIENTS_FILE = {
    "type": "string",
    "contentMediaType": "application/octet-stream",
    "description": "The recipients, CSV (UTF-8) or XLSX, up to 40 MB: a header row "
    "with `address` and a column per template parameter, then a row per recipient.",
}


CREATE_BODY = {
    "requestBody": {
        "required": True,
        "content": {
            "application/json": {"schema": CreateTask.model_json_schema(by_alias=True)},
            "multipart/form-data": {
                "schema": form_schema(TaskFields, {"file": RECIPIENTS_FILE}, required=("file",))
            },
        },
    }
}


class TaskState(Strict):
    state: Literal["cancelled"] = Field(description="Only cancelling is possible.")


async def checked_task(
    ctx: IngestContext, fields: TaskFields, principal: Principal
) -> tuple[NewTask, Template]:
    """The task without its recipients, everything checked, and the template as the
    task will send it."""
    template = await ctx.templates.for_sending(principal.tenant_id, fields.template_id)
    check_type(template.type, principal.user_type)
    sender = parse_mailbox(fields.sender, field="from")
    row = await ctx.store.get_sender(principal.tenant_id, sender.address)
    if row is None:
        raise InvalidValue(f"Disallowed source address: {sender.address} is not a sender of yours")
    if row.domain_status not in SENDING_STATES:
        raise InvalidValue(f"the domain {row.domain} of the sender is not usable")
    label = check_label(fields.label)
    now = datetime.now(UTC)
    send_at = max(fields.send_at or now, now)
    if send_at - now > MAX_SCHEDULE_AHEAD:
        raise InvalidValue("send_at is more than a year ahead")
    task = NewTask(
        id=new_id(), account_id=principal.tenant_id, api_user=principal.api_user,
        user_type=principal.user_type, name=fields.name, template_id=template.id,
        template_version=template.version, subject=fields.subject, sender=fields.sender,
        label=label, send_at=send_at,
    )  # fmt: skip
    checked = replace(template, subject=fields.subject) if fields.subject else template
    return task, checked


async def typed_in(ctx: IngestContext, body: CreateTask, principal: Principal) -> dict[str, Any]:
    """A task with typed-in recipients, checked and stored (every door to tasks uses it)."""
    task, template = await checked_task(ctx, body, principal)
    valid, invalid = typed_recipients(
        [(r, {}) if isinstance(r, str) else (r.address, r.variables) for r in body.recipients]
    )
    if not valid:
        raise InvalidValue("recipients: no valid address (see each row's reason)")
    for recipient in valid:
        try:
            check_values(template, recipient["variables"])
        except MissingMacros as missing:
            raise MissingMacros(f"row {recipient['row']}: {missing.description}") from None
    return await ctx.tasks.create(task, valid, invalid)


def router(ctx: IngestContext) -> APIRouter:
    api = APIRouter(prefix="/v1/tasks", tags=["tasks"], route_class=ApiRoute)
    store = ctx.tasks

    async def uploaded(request: Request, principal: Principal) -> dict[str, Any]:
        async with request.form(max_files=1, max_fields=8, max_part_size=64 * 1024) as form:
            fields: dict[str, str] = {}
            file: UploadFile | None = None
            for name, value in form.multi_items():
                if isinstance(value, UploadFile):
                    if name != "file":
                        raise InvalidValue(f"{name}: only `file` may be a file")
                    file = value
                elif name in fields or name == "file":
                    raise InvalidValue(f"{name}: given more than once, or not as a file")
                else:
                    fields[name] = value
            if file is None:
                raise EmptyValue("file: a multipart task takes its recipients as `file`")
            given = parse_fields(TaskFields, fields)
            task, template = await checked_task(ctx, given, principal)
            size = file.size if file.size is not None else 0
            if size > MAX_TASK_FILE_BYTES:
                raise SizeExceeded(f"file: larger than {MAX_TASK_FILE_BYTES // 2**20} MB")
            if size == 0:
                raise EmptyValue("file: empty (the first row is the header)")
            fmt = await asyncio.to_thread(_check_header, file.file, used_params(template))
            upload = Upload(
                name=(file.filename or "recipients")[:255], format=fmt, file=file.file, size=size
            )
            return await store.create_upload(task, upload)

    @api.post(
        "",
        status_code=201,
        summary="Create a batch sending task",
        description="Sends an approved template from one of your senders to its recipients "
        "at `send_at` (now when absent). JSON takes up to "
        f"{MAX_TYPED_RECIPIENTS} typed-in `recipients`; multipart/form-data takes the same "
        "fields as form fields and the recipients as `file`, a CSV (UTF-8) or XLSX of up "
        "to 40 MB whose header row names `address` and every template parameter "
        "(`GET /v1/tasks/sample` writes one). A file's task is `preparing` while it is "
        "expanded in the background, then `scheduled`. Rows with an invalid or duplicate "
        "address, or without a parameter's value, are reported in `invalid_rows` with "
        "their row numbers, not sent to. A typed-in row without a parameter's value, or a "
        "file without a parameter's column, answers `missing_macros`.",
        responses={
            403: {},
            404: {},
        },  # the template: of another account (404), of the other type (403)
        openapi_extra=CREATE_BODY,
    )
    async def create(request: Request, principal: CurrentPrincipal) -> Response:
        kind = request.headers.get("content-type", "").partition(";")[0].strip().lower()
        if kind == "multipart/form-data":
            return ok(await uploaded(request, principal), status=201)
        body = parse_model(CreateTask, await read_body(request, MAX_TYPED_TASK_BYTES))
        return ok(await typed_in(ctx, body, principal), status=201)

    @api.get(
        "/sample",
        summary="A sample recipients file for a template (CSV or XLSX)",
        description="The header row is `address` and one column per template parameter, "
        "then an example row; fill it in for a task's recipients file.",
        response_class=PlainTextResponse,
        responses={
            200: {
                "content": {
                    "text/csv": {"schema": {"type": "string"}},
                    XLSX_TYPE: {"schema": {"type": "string", "contentMediaType": XLSX_TYPE}},
                }
            },
            404: {},
        },
    )
    async def sample(
        principal: CurrentPrincipal,
        template_id: Annotated[str, Query(max_length=64, description="The template.")],
        format: Annotated[
            FileFormat, Query(description="csv (the default) or xlsx.")
        ] = FileFormat.CSV,
    ) -> Response:
        template = await ctx.templates.get(principal.tenant_id, template_id)
        disposition = {
            "Content-Disposition": f'attachment; filename="task-{template.id}.{format.value}"'
        }
        if format is FileFormat.XLSX:
            data = await asyncio.to_thread(sample_xlsx, template.params)
            return Response(data, media_type=XLSX_TYPE, headers=disposition)
        return PlainTextResponse(
            sample_csv(template.params), media_type="text/csv; charset=utf-8", headers=disposition
        )

    @api.get("", summary="List tasks, newest first")
    async def list_(
        principal: CurrentPrincipal,
        limit: Annotated[int, Query(ge=1, le=500)] = 50,
        cursor: Annotated[str | None, Query(description="next_cursor of the last page")] = None,
    ) -> Response:
        after = decode_cursor(cursor) if cursor else None
        rows = await store.listing(principal.tenant_id, after=after, limit=limit)
        following = next_cursor(rows, limit)
        return ok({"tasks": rows, "next_cursor": following})

    @api.get("/{task_id}", summary="A task: its state and counts")
    async def show(task_id: str, principal: CurrentPrincipal) -> Response:
        return ok(await store.get(principal.tenant_id, checked_id(task_id, "task id")))

    @api.get(
        "/{task_id}/invalid-rows",
        summary="A task's invalid rows, in row order",
        description="Every row not sent to, with its number in the file (or among the "
        "typed-in recipients) and why. Page with `after`, the last row number of a page.",
        responses={404: {}},
    )
    async def invalid_rows(
        task_id: str,
        principal: CurrentPrincipal,
        after: Annotated[int, Query(ge=0, description="Rows after this number.")] = 0,
        limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    ) -> Response:
        found = await store.invalid_rows(
            principal.tenant_id, checked_id(task_id, "task id"), after=after, limit=limit
        )
        next_after = found[-1]["row"] if len(found) == limit else None
        return ok({"invalid_rows": found, "next_after": next_after})

    @api.put(
        "/{task_id}/state",
        summary="Cancel a task that has not started",
        description="`not_available` once it has started (Devino: a task's state moves "
        "forward only).",
    )
    async def set_state(task_id: str, body: TaskState, principal: CurrentPrincipal) -> Response:
        del body  # the only state a caller may set
        return ok(await store.cancel(principal.tenant_id, checked_id(task_id, "task id")))

    return api
