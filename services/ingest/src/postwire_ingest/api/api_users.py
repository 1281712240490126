"""``/v1/api-users``: an account's API users (SendCloud API_USER, trigger or batch)."""

from __future__ import annotations

import json

from fastapi import APIRouter, Request, Response

from postwire_common.errors import NotAvailable
from postwire_common.http.auth import CurrentPrincipal
from postwire_common.http.envelope import ok
from postwire_common.http.routes import ApiRoute
from postwire_ingest import accounts
from postwire_ingest.api.context import IngestContext
from postwire_ingest.api.models import CreateApiUser, Tracking


def router(ctx: IngestContext) -> APIRouter:
    api = APIRouter(prefix="/v1/api-users", tags=["api-users"], route_class=ApiRoute)

    @api.post("", status_code=201, summary="Create an API user; its key is shown only now")
    async def create(body: CreateApiUser, principal: CurrentPrincipal) -> Response:
        created = await accounts.create_api_user(
            ctx.store, principal.tenant_id, body.name, body.type
        )
        if body.tracking is not None:
            await ctx.store.set_api_user_tracking(
                principal.tenant_id, body.name, json.dumps(body.tracking.model_dump())
            )
        created["tracking"] = body.tracking.model_dump() if body.tracking else None
        return ok(created, status=201)

    @api.put("/{name}/tracking", summary="Set what the user's messages track by default")
    async def set_tracking(name: str, body: Tracking, principal: CurrentPrincipal) -> Response:
        user = await ctx.store.set_api_user_tracking(
            principal.tenant_id, name, json.dumps(body.model_dump())
        )
        ctx.sender.forget_tracking(user.login)
        return ok({"api_user": user.login, "name": user.name, "tracking": body.model_dump()})

    @api.get("", summary="List API users")
    async def list_(principal: CurrentPrincipal) -> Response:
        return ok(await ctx.store.list_api_users(principal.tenant_id))

    # {name} is the user's name in the account or its login (api_user); another
    # account's user is not_found, whatever its name.
    @api.delete("/{name}", summary="Delete an API user (by name or api_user)")
    async def delete(name: str, principal: CurrentPrincipal, request: Request) -> Response:
        if await ctx.store.count_api_users(principal.tenant_id) <= 1:
            await ctx.store.api_user(principal.tenant_id, name)  # not_found first
            raise NotAvailable("an account keeps at least one API user")
        deleted = await ctx.store.delete_api_user(principal.tenant_id, name)
        request.app.state.identity.forget(deleted)
        return ok(None)

    @api.post("/{name}/key", summary="Regenerate the key; the old one stops working")
    async def regenerate(name: str, principal: CurrentPrincipal, request: Request) -> Response:
        result = await accounts.regenerate_key(ctx.store, principal.tenant_id, name)
        request.app.state.identity.forget(result["api_user"])
        return ok(result)

    return api
