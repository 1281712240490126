"""``/v1/queues/{name}/credentials``: broker users that consume one queue over AMQP."""

from __future__ import annotations

from fastapi import APIRouter, Response

from postwire_common.http.auth import CurrentPrincipal
from postwire_common.http.envelope import ok
from postwire_common.http.routes import ApiRoute
from postwire_notifier.broker_users import BrokerUsers
from postwire_notifier.resource_store import ResourceStore


def router(store: ResourceStore, users: BrokerUsers) -> APIRouter:
    api = APIRouter(prefix="/v1/queues", tags=["queues"], route_class=ApiRoute)

    @api.post(
        "/{name}/credentials",
        status_code=201,
        summary="Make a broker user that can consume this queue over AMQP (password shown once)",
    )
    async def create(name: str, principal: CurrentPrincipal) -> Response:
        await store.queue(principal.tenant_id, name)  # not_found for another's queue
        return ok(await users.create(principal.tenant_id, name), status=201)

    @api.get("/{name}/credentials", summary="List the queue's broker users")
    async def list_(name: str, principal: CurrentPrincipal) -> Response:
        await store.queue(principal.tenant_id, name)
        return ok(await users.list(principal.tenant_id, name))

    @api.delete(
        "/{name}/credentials/{username}",
        summary="Revoke a broker user: its connections are closed at once",
    )
    async def revoke(name: str, username: str, principal: CurrentPrincipal) -> Response:
        await users.revoke(principal.tenant_id, name, username)
        return ok()

    return api
