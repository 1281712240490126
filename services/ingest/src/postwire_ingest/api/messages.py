"""``POST /v1/messages``: send now, one message per recipient (202 when committed)."""

from __future__ import annotations

import contextlib
from typing import Annotated

from fastapi import APIRouter, Header, Request, Response

from postwire_common.addresses import check_header_value, parse_mailbox
from postwire_common.errors import EmptyValue, InvalidValue, SizeExceeded
from postwire_common.http.auth import CurrentPrincipal
from postwire_common.http.body import parse_model, read_body
from postwire_common.http.envelope import ok
from postwire_common.http.routes import ApiRoute
from postwire_ingest.api.context import IngestContext
from postwire_ingest.api.models import SendMessage
from postwire_ingest.compose import Content, decode_attachment
from postwire_ingest.limits import MAX_ATTACHMENTS, MAX_REQUEST_BYTES
from postwire_ingest.sending import SendCommand, fingerprint
from postwire_ingest.templates import check_type


def router(ctx: IngestContext) -> APIRouter:
    api = APIRouter(prefix="/v1/messages", tags=["messages"], route_class=ApiRoute)

    @api.post(
        "",
        status_code=202,
        summary="Send a message to one or more recipients",
        # With a template_id: another account's or a missing template (404), a template
        # of the other API user type (403).
        responses={403: {}, 404: {}},
        openapi_extra={
            "requestBody": {
                "required": True,
                "content": {"application/json": {"schema": SendMessage.model_json_schema()}},
            }
        },
    )
    async def send(
        request: Request,
        principal: CurrentPrincipal,
        idempotency_key: Annotated[str | None, Header(max_length=255)] = None,
    ) -> Response:
        raw = await read_body(request, MAX_REQUEST_BYTES)
        body = parse_model(SendMessage, raw)
        if len(body.attachments) > MAX_ATTACHMENTS:
            raise SizeExceeded(f"at most {MAX_ATTACHMENTS} attachments per message")
        if idempotency_key is not None:
            check_header_value("Idempotency-Key", idempotency_key)
            if not idempotency_key.strip():
                raise InvalidValue("Idempotency-Key is empty")
        to = [body.to] if isinstance(body.to, str) else body.to
        addresses = [t if isinstance(t, str) else t.address for t in to]
        personal: dict[str, dict[str, str]] = {}
        for t in to:
            if not isinstance(t, str) and t.variables:
                # A bad address is refused, with its reason, where recipients are checked.
                with contextlib.suppress(InvalidValue):
                    address = parse_mailbox(t.address, field="recipient").address
                    personal[address.lower()] = t.variables
        template = None
        if body.template_id is not None:
            if body.subject is not None or body.text is not None or body.html is not None:
                raise InvalidValue(
                    "template_id replaces subject, text and html: send one or the other"
                )
            template = await ctx.templates.for_sending(principal.tenant_id, body.template_id)
            check_type(template.type, principal.user_type)
        elif body.subject is None:
            raise EmptyValue("subject is required (or a template_id)")
        elif personal or body.variables:
            raise InvalidValue("variables need a template_id")
        command = SendCommand(
            sender=body.sender,
            to=addresses,
            template=template,
            template_id=template.id if template else None,
            variables=body.variables,
            recipient_variables=personal,
            content=Content(
                subject=body.subject or "",
                text=body.text,
                html=body.html,
                attachments=tuple(
                    decode_attachment(a.filename, a.content, a.content_type)
                    for a in body.attachments
                ),
                headers=body.headers,
            ),
            label=body.label,
            tracking=body.tracking.model_dump() if body.tracking else None,
            unsubscribe=template.unsubscribe if template else False,
            idempotency_key=idempotency_key,
            fingerprint=fingerprint(raw),
        )
        messages = await ctx.sender.send(principal, command)
        return ok({"messages": messages}, status=202, description="queued")

    return api
