"""``POST /v1/messages``: send now, one message per recipient (202 when committed)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Header, Request, Response

from postwire_common.addresses import check_header_value
from postwire_common.errors import InvalidValue, SizeExceeded
from postwire_common.http.auth import CurrentPrincipal
from postwire_common.http.body import parse_model, read_body
from postwire_common.http.envelope import ok
from postwire_common.http.routes import ApiRoute
from postwire_ingest.api.context import IngestContext
from postwire_ingest.api.models import SendMessage
from postwire_ingest.compose import Content, decode_attachment
from postwire_ingest.limits import MAX_ATTACHMENTS, MAX_REQUEST_BYTES
from postwire_ingest.sending import SendCommand, fingerprint


def router(ctx: IngestContext) -> APIRouter:
    api = APIRouter(prefix="/v1/messages", tags=["messages"], route_class=ApiRoute)

    @api.post(
        "",
        status_code=202,
        summary="Send a message to one or more recipients",
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
        command = SendCommand(
            sender=body.sender,
            to=[body.to] if isinstance(body.to, str) else body.to,
            content=Content(
                subject=body.subject,
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
            idempotency_key=idempotency_key,
            fingerprint=fingerprint(raw),
        )
        messages = await ctx.sender.send(principal, command)
        return ok({"messages": messages}, status=202, description="queued")

    return api
