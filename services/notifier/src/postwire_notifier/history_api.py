"""Push history, the same for webhooks and HTTP subscriptions (one engine):
``GET …/deliveries`` lists pushes newest first, each with every attempt (time, HTTP
status, latency, error, whether it was to be retried), its state and next try;
``POST …/deliveries/{id}/redeliver`` pushes a finished one again now."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Query, Response

from postwire_common.http.auth import CurrentPrincipal
from postwire_common.http.envelope import ok
from postwire_common.http.routes import ApiRoute
from postwire_notifier.store import NotifierStore

State = Literal["pending", "delivered", "dropped"]


def router(store: NotifierStore) -> APIRouter:
    api = APIRouter(tags=["deliveries"], route_class=ApiRoute)

    async def listing(
        webhook_id: str, state: State | None, limit: int, cursor: int | None
    ) -> Response:
        found = await store.deliveries(webhook_id, state=state, limit=limit, before=cursor)
        next_cursor = found[-1]["id"] if len(found) == limit else None
        return ok({"deliveries": found, "next_cursor": next_cursor})

    @api.get("/v1/webhooks/{webhook_id}/deliveries", summary="A webhook's push history")
    async def webhook_deliveries(
        webhook_id: str,
        principal: CurrentPrincipal,
        state: State | None = None,
        limit: Annotated[int, Query(ge=1, le=200)] = 50,
        cursor: Annotated[int | None, Query(description="next_cursor of the last page")] = None,
    ) -> Response:
        hook = await store.webhook(principal.tenant_id, webhook_id)
        return await listing(hook.id, state, limit, cursor)

    @api.post(
        "/v1/webhooks/{webhook_id}/deliveries/{delivery_id}/redeliver",
        summary="Push a delivered or dropped push again now",
    )
    async def webhook_redeliver(
        webhook_id: str, delivery_id: int, principal: CurrentPrincipal
    ) -> Response:
        hook = await store.webhook(principal.tenant_id, webhook_id)
        await store.redeliver(hook.id, delivery_id)
        return ok()

    @api.get(
        "/v1/topics/{topic}/subscriptions/{name}/deliveries",
        summary="An HTTP subscription's push history",
    )
    async def subscription_deliveries(
        topic: str,
        name: str,
        principal: CurrentPrincipal,
        state: State | None = None,
        limit: Annotated[int, Query(ge=1, le=200)] = 50,
        cursor: Annotated[int | None, Query(description="next_cursor of the last page")] = None,
    ) -> Response:
        webhook_id = await store.subscription_webhook(principal.tenant_id, topic, name)
        return await listing(webhook_id, state, limit, cursor)

    @api.post(
        "/v1/topics/{topic}/subscriptions/{name}/deliveries/{delivery_id}/redeliver",
        summary="Push a delivered or dropped push again now",
    )
    async def subscription_redeliver(
        topic: str, name: str, delivery_id: int, principal: CurrentPrincipal
    ) -> Response:
        webhook_id = await store.subscription_webhook(principal.tenant_id, topic, name)
        await store.redeliver(webhook_id, delivery_id)
        return ok()

    return api
