"""``/v1/tasks``: batch sending tasks (KooMessage's sending tasks), with typed-in
recipients; see ``tasks.py`` for how they run."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Annotated, Literal

from fastapi import APIRouter, Query, Response
from fastapi.responses import PlainTextResponse
from pydantic import Field

from postwire_common.addresses import parse_mailbox
from postwire_common.errors import InvalidValue, MissingMacros
from postwire_common.http.auth import CurrentPrincipal
from postwire_common.http.cursors import decode_cursor, encode_cursor
from postwire_common.http.envelope import ok
from postwire_common.http.routes import ApiRoute
from postwire_common.ids import checked_id, new_id
from postwire_common.instants import Instant
from postwire_ingest.api.context import IngestContext
from postwire_ingest.api.models import RecipientIn, Strict
from postwire_ingest.sending import SENDING_STATES, check_label
from postwire_ingest.task_store import NewTask
from postwire_ingest.tasks import MAX_TYPED_RECIPIENTS, sample_csv, typed_recipients
from postwire_ingest.templates import check_type, render

MAX_SCHEDULE_AHEAD = timedelta(days=365)


class CreateTask(Strict):
    name: str = Field(min_length=1, max_length=64, description="Task name.")
    template_id: str = Field(max_length=64, description="An approved template of yours or public.")
    subject: str | None = Field(
        None, min_length=1, max_length=256, description="Replaces the template's subject."
    )
    sender: str = Field(alias="from", description="A sender address of yours.")
    label: str | None = Field(None, description="Label of every message (made if new).")
    send_at: Instant | None = Field(None, description="When to start; now when absent.")
    recipients: list[str | RecipientIn] = Field(
        min_length=1,
        max_length=MAX_TYPED_RECIPIENTS,
        description=f"At most {MAX_TYPED_RECIPIENTS} typed in, addresses or "
        "{address, variables}.",
    )


class TaskState(Strict):
    state: Literal["cancelled"] = Field(description="Only cancelling is possible.")


def router(ctx: IngestContext) -> APIRouter:
    api = APIRouter(prefix="/v1/tasks", tags=["tasks"], route_class=ApiRoute)
    store = ctx.tasks

    @api.post(
        "",
        status_code=201,
        summary="Create a batch sending task",
        description="Sends an approved template from one of your senders to up to "
        f"{MAX_TYPED_RECIPIENTS} typed-in recipients at `send_at` (now when absent). Rows "
        "with an invalid or duplicate address are reported in `invalid_rows`, not sent to. "
        "A parameter without a value in any row answers `missing_macros`. File uploads "
        "(CSV, XLSX) are not available yet.",
        responses={
            403: {},
            404: {},
        },  # the template: of another account (404), of the other type (403)
    )
    async def create(body: CreateTask, principal: CurrentPrincipal) -> Response:
        template = await ctx.templates.for_sending(principal.tenant_id, body.template_id)
        check_type(template.type, principal.user_type)
        sender = parse_mailbox(body.sender, field="from")
        row = await ctx.store.get_sender(principal.tenant_id, sender.address)
        if row is None:
            raise InvalidValue(
                f"Disallowed source address: {sender.address} is not a sender of yours"
            )
        if row.domain_status not in SENDING_STATES:
            raise InvalidValue(f"the domain {row.domain} of the sender is not usable")
        label = check_label(body.label)
        now = datetime.now(UTC)
        send_at = max(body.send_at or now, now)
        if send_at - now > MAX_SCHEDULE_AHEAD:
            raise InvalidValue("send_at is more than a year ahead")
        valid, invalid = typed_recipients(
            [(r, {}) if isinstance(r, str) else (r.address, r.variables) for r in body.recipients]
        )
        if not valid:
            raise InvalidValue("recipients: no valid address (see each row's reason)")
        checked = replace(template, subject=body.subject) if body.subject else template
        for recipient in valid:
            try:
                render(checked, recipient["variables"])
            except MissingMacros as missing:
                raise MissingMacros(f"row {recipient['row']}: {missing.description}") from None
        task = NewTask(
            id=new_id(), account_id=principal.tenant_id, api_user=principal.api_user,
            user_type=principal.user_type, name=body.name, template_id=template.id,
            template_version=template.version, subject=body.subject, sender=body.sender,
            label=label, send_at=send_at, recipients=valid, invalid_rows=invalid,
        )  # fmt: skip
        return ok(await store.create(task), status=201)

    @api.get(
        "/sample",
        summary="A sample recipients file for a template (CSV)",
        description="The header row is `address` and one column per template parameter, "
        "then an example row; fill it in for a task's recipients file.",
        response_class=PlainTextResponse,
        responses={200: {"content": {"text/csv": {"schema": {"type": "string"}}}}, 404: {}},
    )
    async def sample(
        principal: CurrentPrincipal,
        template_id: Annotated[str, Query(max_length=64, description="The template.")],
    ) -> Response:
        template = await ctx.templates.get(principal.tenant_id, template_id)
        return PlainTextResponse(
            sample_csv(template.params),
            media_type="text/csv; charset=utf-8",
            headers={"Content-Disposition": f'attachment; filename="task-{template.id}.csv"'},
        )

    @api.get("", summary="List tasks, newest first")
    async def list_(
        principal: CurrentPrincipal,
        limit: Annotated[int, Query(ge=1, le=500)] = 50,
        cursor: Annotated[str | None, Query(description="next_cursor of the last page")] = None,
    ) -> Response:
        after = decode_cursor(cursor) if cursor else None
        rows = await store.list(principal.tenant_id, after=after, limit=limit)
        last = rows[-1] if len(rows) == limit else None
        next_cursor = encode_cursor(last["created_at"], last["id"]) if last else None
        return ok({"tasks": rows, "next_cursor": next_cursor})

    @api.get("/{task_id}", summary="A task: its state and counts")
    async def show(task_id: str, principal: CurrentPrincipal) -> Response:
        return ok(await store.get(principal.tenant_id, checked_id(task_id, "task id")))

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
