"""``/v1/tls-policies``: TLS towards recipient domains, per account (``tls_policies``)."""

from __future__ import annotations

from fastapi import APIRouter, Response

from postwire_common.http.auth import CurrentPrincipal
from postwire_common.http.envelope import ok
from postwire_common.http.routes import ApiRoute
from postwire_ingest.api.context import IngestContext
from postwire_ingest.api.models import PutTlsPolicy
from postwire_ingest.limits import MAX_TLS_POLICIES_PER_ACCOUNT
from postwire_ingest.tls_policies import CACHE_SECONDS, normalize_rule_domain


def router(ctx: IngestContext) -> APIRouter:
    api = APIRouter(prefix="/v1/tls-policies", tags=["tls-policies"], route_class=ApiRoute)
    store = ctx.tls.store

    @api.get("", summary="List TLS policies")
    async def list_(principal: CurrentPrincipal) -> Response:
        return ok(await store.list_policies(principal.tenant_id))

    @api.get("/{domain}", summary="Show the TLS policy of a recipient domain (or *)")
    async def show(domain: str, principal: CurrentPrincipal) -> Response:
        return ok(await store.get_policy(principal.tenant_id, normalize_rule_domain(domain)))

    @api.put(
        "/{domain}",
        summary="Set the TLS policy of a recipient domain (or * for every other domain)",
        description="`require`: STARTTLS with a certificate valid for the MX host, or the "
        "message fails with what was wrong; `opportunistic` (the default): STARTTLS when "
        "offered; `none`: plain text. Applies to mail accepted afterwards (other ingest "
        f"processes within {CACHE_SECONDS:g} s); mail already queued keeps its mode.",
    )
    async def put(domain: str, body: PutTlsPolicy, principal: CurrentPrincipal) -> Response:
        name = normalize_rule_domain(domain)
        row = await store.put_policy(
            principal.tenant_id, name, body.mode, MAX_TLS_POLICIES_PER_ACCOUNT
        )
        ctx.tls.forget(principal.tenant_id)
        return ok(row)

    @api.delete(
        "/{domain}", summary="Delete a TLS policy (the domain falls back to * or opportunistic)"
    )
    async def delete(domain: str, principal: CurrentPrincipal) -> Response:
        await store.delete_policy(principal.tenant_id, normalize_rule_domain(domain))
        ctx.tls.forget(principal.tenant_id)
        return ok(None)

    return api
