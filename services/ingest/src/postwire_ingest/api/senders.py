"""``/v1/senders``: addresses ``prefix@domain`` an account may send as (the domain usable or
verified)."""

from __future__ import annotations

from fastapi import APIRouter, Response

from postwire_common.addresses import check_header_value, normalize_address
from postwire_common.errors import NotAvailable
from postwire_common.http.auth import CurrentPrincipal
from postwire_common.http.envelope import ok
from postwire_common.http.routes import ApiRoute
from postwire_ingest.api.context import IngestContext
from postwire_ingest.api.models import CreateSender
from postwire_ingest.sending import SENDING_STATES


def router(ctx: IngestContext) -> APIRouter:
    api = APIRouter(prefix="/v1/senders", tags=["senders"], route_class=ApiRoute)

    @api.post("", status_code=201, summary="Add a sender address on a verified domain")
    async def create(body: CreateSender, principal: CurrentPrincipal) -> Response:
        address = normalize_address(body.address, field="address")
        alias = check_header_value("alias", body.alias.strip()) if body.alias else None
        domain_name = address.rpartition("@")[2]
        domain = await ctx.store.get_domain(principal.tenant_id, domain_name)
        if domain["status"] not in SENDING_STATES:
            raise NotAvailable(
                f"domain {domain_name} is not usable yet: publish its SPF and DKIM records, "
                f"then POST /v1/domains/{domain_name}/verify"
            )
        await ctx.store.insert_sender(principal.tenant_id, address, domain_name, alias or None)
        return ok({"address": address, "alias": alias, "domain": domain_name}, status=201)

    @api.get("", summary="List sender addresses")
    async def list_(principal: CurrentPrincipal) -> Response:
        return ok(await ctx.store.list_senders(principal.tenant_id))

    @api.delete("/{address}", summary="Delete a sender address")
    async def delete(address: str, principal: CurrentPrincipal) -> Response:
        await ctx.store.delete_sender(principal.tenant_id, normalize_address(address))
        ctx.sender.forget_senders(principal.tenant_id)
        return ok(None)

    return api
