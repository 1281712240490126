"""``/v1/webhooks``: event push endpoints of an account."""

from __future__ import annotations

from typing import Literal

from fastapi import APIRouter, Response
from pydantic import Field

from postwire_common.config import Settings
from postwire_common.http.auth import CurrentPrincipal
from postwire_common.http.envelope import ok
from postwire_common.http.models import RequestModel
from postwire_common.http.routes import ApiRoute
from postwire_notifier import webhooks
from postwire_notifier.http_client import SafeClient
from postwire_notifier.store import NotifierStore


class CreateWebhook(RequestModel):
    url: str = Field(description="http(s) URL answering 200 to GET and POST.")
    events: list[str] = Field(description="Event types to push (delivered, failed, ...).")
    format: Literal["postwire", "sendcloud"] = Field(
        "postwire",
        description="postwire: signed JSON (Webhook push); sendcloud: SendCloud's event and "
        "field names, form-encoded, same signature (docs/migration/sendcloud.md).",
    )


class TestPush(RequestModel):
    event: str = Field("delivered", description="Event type of the sample push.")


def router(settings: Settings, store: NotifierStore, client: SafeClient) -> APIRouter:
    api = APIRouter(prefix="/v1/webhooks", tags=["webhooks"], route_class=ApiRoute)

    @api.post("", status_code=201, summary="Add a webhook; its app_key is shown only now")
    async def create(body: CreateWebhook, principal: CurrentPrincipal) -> Response:
        created = await webhooks.create_webhook(
            store, client, principal, body.url, body.events, body.format
        )
        return ok(created, status=201)

    @api.get("", summary="List webhooks")
    async def list_(principal: CurrentPrincipal) -> Response:
        return ok(await store.list_webhooks(principal.tenant_id))

    @api.delete("/{webhook_id}", summary="Delete a webhook; pending pushes are dropped")
    async def delete(webhook_id: str, principal: CurrentPrincipal) -> Response:
        await store.delete_webhook(principal.tenant_id, webhook_id)
        return ok(None)

    @api.post("/{webhook_id}/test", summary="Push a sample event now")
    async def test(webhook_id: str, body: TestPush, principal: CurrentPrincipal) -> Response:
        hook = await store.webhook(principal.tenant_id, webhook_id)
        return ok(await webhooks.test_push(client, hook, body.event, settings.region))

    return api
