"""Devino Telecom's email HTTP API (``/email/v1``) over the same domain code as ``/v1``.

::

    Devino client ──Basic login:password (= api_user:api_key)──▶ /email/v1/<Resource>
        PascalCase body ──DevinoModel (aliases; fields postwire lacks: not_available)──▶
        SendCommand ──Sender.send──▶ as POST /v1/messages
        CreateTask  ──api.tasks.typed_in──▶ as POST /v1/tasks (inline Subject/Body become
                                            a template of the account first)
        task / attachment stores ──▶ as /v1/tasks/{id}[/state|/attachments]
    errors: the envelope is Devino's already; descriptions name Devino's fields.

Devino answers ``{"Result", "Code", "Description"}`` with the codes of API.md, so only the
field names and shapes differ. Ids are postwire's (26-character strings, not integers).
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Coroutine, Mapping
from typing import Annotated, Any

from fastapi import APIRouter, Path, Request, Response
from fastapi.routing import APIRoute
from pydantic import ValidationError
from starlette.convertors import Convertor, register_url_convertor

from postwire_common.addresses import parse_mailbox
from postwire_common.errors import (
    EmptyValue,
    InvalidEmail,
    InvalidValue,
    NotAvailable,
    NotFound,
    PostwireError,
)
from postwire_common.http.auth import CurrentPrincipal, current_principal
from postwire_common.http.body import parse_model, read_body
from postwire_common.http.envelope import ok
from postwire_common.http.routes import ApiRoute
from postwire_common.identity import Principal
from postwire_common.ids import checked_id
from postwire_ingest.api.context import IngestContext
from postwire_ingest.api.task_attachments import UPLOAD_BODY, read_attachment
from postwire_ingest.api.tasks import MAX_TYPED_TASK_BYTES, CreateTask, typed_in
from postwire_ingest.compose import Attachment, Content, decode_attachment
from postwire_ingest.limits import (
    MAX_REQUEST_BYTES,
    MAX_TASK_ATTACHMENT_REQUEST_BYTES,
    MAX_TEMPLATES_PER_ACCOUNT,
)
from postwire_ingest.sending import SendCommand, fingerprint
from postwire_ingest.templates import Draft, TemplateType, check_draft
from postwire_ingest.vendors.devino_models import (
    DevinoAttachment,
    DevinoMessage,
    DevinoModel,
    DevinoTask,
    DevinoTaskState,
    attachment_result,
    devino_text,
    task_result,
)

PREFIX = "/email/v1"
# Bodies larger than the default 64 KB (app.py hands these to the body-limit middleware).
BODY_LIMITS = {
    ("POST", f"{PREFIX}/Messages"): MAX_REQUEST_BYTES,
    ("POST", f"{PREFIX}/Tasks"): MAX_TYPED_TASK_BYTES,
    ("POST", f"{PREFIX}/Tasks/{{TaskId}}/Attachments"): MAX_TASK_ATTACHMENT_REQUEST_BYTES,
}
TaskId = Annotated[str, Path(alias="TaskId", description="The task's id, as created.")]


def message_command(body: DevinoMessage, raw: bytes) -> SendCommand:
    """``POST /Messages`` as the send command ``POST /v1/messages`` makes. MergeFields
    fill {{macros}} of the inline Subject and Body, as a template's parameters."""
    if not body.check_unsubscription:
        raise NotAvailable(
            "CheckUnsubscription false is not available in postwire: suppressed "
            "(unsubscribed, hard-bounced) addresses are never sent to"
        )
    if not (body.body.html or body.body.plain_text):
        raise EmptyValue("Body.Html or Body.PlainText is required")
    content = Content(
        subject=body.subject,
        text=body.body.plain_text,
        html=body.body.html,
        attachments=tuple(
            decode_attachment(a.name, a.content, a.content_type) for a in body.attachments
        ),
    )
    personal: dict[str, dict[str, str]] = {}
    for r in body.recipients:
        if r.merge_fields:
            # A bad address is refused, with its reason, where recipients are checked.
            with contextlib.suppress(InvalidValue, InvalidEmail):
                personal[parse_mailbox(r.address).address.lower()] = r.merge_fields
    inline = Draft(name="", subject=body.subject, text=content.text, html=content.html)
    return SendCommand(
        sender=body.sender.value(),
        to=[r.value() for r in body.recipients],
        content=content,
        template=inline if personal else None,
        recipient_variables=personal,
        fingerprint=fingerprint(raw),
    )


# --- routes ----------------------------------------------------------------------------


def body_doc(
    model: type[DevinoModel], *, multipart: dict[str, Any] | None = None
) -> dict[str, Any]:
    """A route's body for the OpenAPI document (the routes read bodies themselves)."""
    content = {"application/json": {"schema": model.model_json_schema()}}
    if multipart is not None:
        content["multipart/form-data"] = multipart
    return {"requestBody": {"required": True, "content": content}}


def check_json(request: Request) -> None:
    """Devino also speaks XML; postwire only JSON: an XML body or an answer asked for
    only as XML is ``not_available``, never read as broken JSON."""
    kind = request.headers.get("content-type", "").partition(";")[0].strip().lower()
    accept = request.headers.get("accept", "").lower()
    wants_xml = "xml" in accept and not any(t in accept for t in ("json", "*/*"))
    if kind.endswith(("/xml", "+xml")) or wants_xml:
        raise NotAvailable("XML is not available in postwire: send and accept JSON")


class DevinoRoute(ApiRoute):
    """ApiRoute that takes JSON only and whose domain errors speak of Devino's fields."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def translated(request: Request) -> Response:
            try:
                await current_principal(request)  # the caller first, as ApiRoute does
                check_json(request)
                return await handler(request)
            except PostwireError as exc:
                exc.description = devino_text(exc.description)
                raise

        return translated


async def create_task(ctx: IngestContext, body: DevinoTask, principal: Principal) -> dict[str, Any]:
    """A Devino task through ``typed_in``. Inline Subject and Body become a template of
    the account (removed again if the task is refused), since a task sends a template."""
    made = None
    template_id = body.template_id
    if template_id is None:
        if body.subject is None or body.body is None:
            raise EmptyValue("Subject and Body are required (or a TemplateId)")
        draft = Draft(
            name=f"Devino task: {body.name}"[:64],
            subject=body.subject,
            text=body.body.plain_text,
            html=body.body.html,
        )
        made = await ctx.templates.create(
            principal.tenant_id,
            draft,
            TemplateType(principal.user_type),
            check_draft(draft),
            MAX_TEMPLATES_PER_ACCOUNT,
        )
        template_id = made.id
    elif body.body is not None:
        raise InvalidValue("TemplateId replaces Body: send one or the other")
    try:
        fields = CreateTask.model_validate(
            {
                "name": body.name,
                "template_id": template_id,
                "subject": body.subject if made is None else None,
                "from": body.sender.value(),
                "send_at": body.start_date_time,
                "recipients": [
                    {"address": r.value(), "variables": r.merge_fields} for r in body.recipients
                ],
            }
        )
        return await typed_in(ctx, fields, principal)
    except (PostwireError, ValidationError) as exc:
        if made is not None:
            await ctx.templates.delete(principal.tenant_id, made.id)
        if isinstance(exc, ValidationError):
            first = exc.errors(include_url=False)[0]
            raise InvalidValue(f"{first['loc'][0]}: {first['msg']}") from None
        raise


async def shown_task(
    ctx: IngestContext, account_id: str, task: Mapping[str, Any], status: int = 200
) -> Response:
    template = await ctx.templates.get(account_id, task["template_id"], task["template_version"])
    return ok(task_result(task, task["subject"] or template.subject), status=status)


def router(ctx: IngestContext) -> APIRouter:
    api = APIRouter(tags=["devino"], route_class=DevinoRoute)

    @api.post(
        f"{PREFIX}/Messages",
        summary="Devino: send a transactional message",
        openapi_extra=body_doc(DevinoMessage),
    )
    async def send(request: Request, principal: CurrentPrincipal) -> Response:
        raw = await read_body(request, MAX_REQUEST_BYTES)
        command = message_command(parse_model(DevinoMessage, raw), raw)
        sent = await ctx.sender.send(principal, command)
        return ok(
            [
                {
                    "MessageId": m["env_id"],
                    "SmtpMessageId": m["msg_id"],
                    "Address": m["rcpt"],
                    "State": m["status"].title(),
                }
                for m in sent
            ]
        )

    @api.post(
        f"{PREFIX}/Tasks",
        status_code=201,
        summary="Devino: create a mailing (task)",
        # TemplateId: another account's or a missing template (404), of the other type (403)
        responses={403: {}, 404: {}},
        openapi_extra=body_doc(DevinoTask),
    )
    async def create(request: Request, principal: CurrentPrincipal) -> Response:
        body = parse_model(DevinoTask, await read_body(request, MAX_TYPED_TASK_BYTES))
        task = await create_task(ctx, body, principal)
        return await shown_task(ctx, principal.tenant_id, task, status=201)

    @api.get(f"{PREFIX}/Tasks/{{TaskId}}", summary="Devino: a mailing, its state and counts")
    async def show(task_id: TaskId, principal: CurrentPrincipal) -> Response:
        task = await ctx.tasks.get(principal.tenant_id, checked_id(task_id, "TaskId"))
        return await shown_task(ctx, principal.tenant_id, task)

    @api.patch(f"{PREFIX}/Tasks/{{TaskId}}", summary="Devino: edit a mailing (not available)")
    async def edit(task_id: TaskId, principal: CurrentPrincipal) -> Response:
        await ctx.tasks.get(principal.tenant_id, checked_id(task_id, "TaskId"))  # not_found
        raise NotAvailable(
            "editing a mailing is not available in postwire: cancel it (PUT "
            '/Tasks/{TaskId}/State {"State": "Cancelled"}) and create another'
        )

    @api.put(
        f"{PREFIX}/Tasks/{{TaskId}}/State", summary="Devino: change a mailing's state (cancel)"
    )
    async def set_state(task_id: TaskId, request: Request, principal: CurrentPrincipal) -> Response:
        task_id = checked_id(task_id, "TaskId")
        body = parse_model(DevinoTaskState, await read_body(request, 4096))
        if body.state.lower() != "cancelled":
            await ctx.tasks.get(principal.tenant_id, task_id)  # not_found before the rest
            raise NotAvailable(
                f"State {body.state!r} is not available in postwire: a mailing can only be "
                "Cancelled, before it starts sending"
            )
        task = await ctx.tasks.cancel(principal.tenant_id, task_id)
        return await shown_task(ctx, principal.tenant_id, task)

    @api.get(f"{PREFIX}/Tasks/{{TaskId}}/Attachments", summary="Devino: a mailing's attachments")
    async def attachments(task_id: TaskId, principal: CurrentPrincipal) -> Response:
        rows = await ctx.task_attachments.list(principal.tenant_id, checked_id(task_id, "TaskId"))
        return ok([attachment_result(r) for r in rows])

    @api.post(
        f"{PREFIX}/Tasks/{{TaskId}}/Attachments",
        status_code=201,
        summary="Devino: attach a file",
        openapi_extra=body_doc(
            DevinoAttachment,
            multipart=UPLOAD_BODY["requestBody"]["content"]["multipart/form-data"],
        ),
    )
    async def attach(task_id: TaskId, request: Request, principal: CurrentPrincipal) -> Response:
        task_id = checked_id(task_id, "TaskId")
        attachment = await read_attachment(request, devino_attachment)
        row = await ctx.task_attachments.add(
            principal.tenant_id,
            task_id,
            attachment.filename,
            attachment.content_type,
            attachment.data,
        )
        return ok(attachment_result(row), status=201)

    @api.delete(
        f"{PREFIX}/Tasks/{{TaskId}}/Attachments", summary="Devino: remove a mailing's attachments"
    )
    async def detach(task_id: TaskId, principal: CurrentPrincipal) -> Response:
        removed = await ctx.task_attachments.clear(
            principal.tenant_id, checked_id(task_id, "TaskId")
        )
        return ok({"Removed": removed})

    api.add_api_route(
        "/email/{version:devino_other_version}/{rest:path}",
        other_version,
        methods=["GET", "POST", "PUT", "PATCH", "DELETE"],
        include_in_schema=False,
        route_class_override=APIRoute,  # no caller or query checks: any caller, any query
    )
    return api


class OtherVersion(Convertor[str]):
    """A path segment that is not ``v1``: only other versions reach ``other_version``, so
    v1's own paths keep the app's 404 and 405 (with an Allow naming only their methods)."""

    regex = r"(?!v1(?:/|$))[^/]+"

    def convert(self, value: str) -> str:
        return value

    def to_string(self, value: str) -> str:
        return value


register_url_convertor("devino_other_version", OtherVersion())


async def other_version(version: str) -> Response:
    raise NotFound(
        f"/email/{version}: no such API version; postwire serves the Devino email API v1 at "
        f"{PREFIX}"
    )


def devino_attachment(raw: bytes) -> Attachment:
    """A JSON attachment in Devino's names: {Name, Content, ContentType}."""
    body = parse_model(DevinoAttachment, raw)
    return decode_attachment(body.name, body.content, body.content_type)
