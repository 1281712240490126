"""Operator routes: ``Authorization: Bearer <POSTWIRE_ADMIN_TOKEN>``."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Response

from postwire_common.errors import InvalidValue, NotFound
from postwire_common.http.auth import AdminAccess
from postwire_common.http.envelope import ok
from postwire_common.http.routes import ApiRoute
from postwire_ingest import accounts
from postwire_ingest.api.context import IngestContext
from postwire_ingest.api.models import CreateAccount
from postwire_ingest.domains import normalize_domain


def router(ctx: IngestContext) -> APIRouter:
    api = APIRouter(
        prefix="/v1/admin", tags=["admin"], route_class=ApiRoute, dependencies=[AdminAccess]
    )

    @api.post("/accounts", status_code=201, summary="Create an account (tenant)")
    async def create_account(body: CreateAccount) -> Response:
        created = await accounts.create_account(ctx.store, body.name)
        return ok(created, status=201)

    @api.post("/domains/{name}/verified", summary="Mark a domain verified (operator override)")
    async def mark_verified(
        name: str,
        account: Annotated[str | None, Query(description="Account name, if several")] = None,
    ) -> Response:
        domain = normalize_domain(name)
        account_id = None
        if account is not None:
            account_id = await ctx.store.account_id_by_name(account)
            if account_id is None:
                raise NotFound(f"no account {account!r}")
        owners = await ctx.store.domain_accounts(domain)
        if account_id is None and len(owners) > 1:
            raise InvalidValue(f"{len(owners)} accounts added {domain}; name one with ?account=")
        marked = await ctx.store.mark_domain_verified(domain, account_id)
        if not marked:
            raise NotFound(f"no domain {domain}")
        return ok({"name": domain, "status": "verified"})

    return api
