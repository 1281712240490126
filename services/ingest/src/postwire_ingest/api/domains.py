"""``/v1/domains``: sender domains and the DNS records to publish for them."""

from __future__ import annotations

import asyncio
from typing import Any

import asyncpg
from fastapi import APIRouter, Response

from postwire_common.http.auth import CurrentPrincipal
from postwire_common.http.envelope import ok
from postwire_common.http.routes import ApiRoute
from postwire_ingest.api.context import IngestContext
from postwire_ingest.api.models import CreateDomain, UpdateDomain
from postwire_ingest.domains import (
    dns_records,
    generate_dkim_key,
    generate_ed25519_key,
    normalize_domain,
)
from postwire_ingest.limits import MAX_DOMAINS_PER_ACCOUNT


def router(ctx: IngestContext) -> APIRouter:
    api = APIRouter(prefix="/v1/domains", tags=["domains"], route_class=ApiRoute)

    def present(row: asyncpg.Record) -> dict[str, Any]:
        return {
            "name": row["name"],
            "status": row["status"],
            "records": dns_records(
                ctx.settings,
                row["name"],
                row["dkim_selector"],
                row["dkim_public_key"],
                row["record_status"],
                row["record_found"],
                (row["dkim_next_selector"], row["dkim_next_public_key"])
                if row["dkim_next_selector"]
                else None,
                (row["dkim_ed25519_selector"], row["dkim_ed25519_public_key"])
                if row["dkim_ed25519"]
                else None,
            ),
            "dkim_ed25519": row["dkim_ed25519"],
            "checked_at": row["checked_at"],
            "created_at": row["created_at"],
        }

    @api.post("", status_code=201, summary="Add a domain; returns the DNS records to publish")
    async def create(body: CreateDomain, principal: CurrentPrincipal) -> Response:
        name = normalize_domain(body.name)
        key = await asyncio.to_thread(generate_dkim_key)  # RSA keygen takes ~0.1 s of CPU
        ed = generate_ed25519_key(key.selector) if body.dkim_ed25519 else None
        row = await ctx.store.insert_domain(
            principal.tenant_id,
            name,
            key.selector,
            key.private_pem,
            key.public_b64,
            MAX_DOMAINS_PER_ACCOUNT,
            (ed.selector, ed.private_pem, ed.public_b64) if ed else None,
        )
        return ok(present(row), status=201)

    @api.get("", summary="List domains")
    async def list_(principal: CurrentPrincipal) -> Response:
        return ok([present(r) for r in await ctx.store.list_domains(principal.tenant_id)])

    @api.get("/{name}", summary="Show a domain and its records")
    async def show(name: str, principal: CurrentPrincipal) -> Response:
        row = await ctx.store.get_domain(principal.tenant_id, normalize_domain(name))
        return ok(present(row))

    @api.patch(
        "/{name}",
        summary="Change a domain's settings: Ed25519 DKIM signing on or off",
        description="With `dkim_ed25519: true` the domain gets an Ed25519 key (RFC 8463) "
        "and a `dkim_ed25519` record to publish; once a verify (or the background re-check) "
        "finds it, copies carry an ed25519-sha256 signature after the rsa-sha256 one. The "
        "RSA key always signs. Turning it off keeps the key: on again, the same record.",
    )
    async def update(name: str, body: UpdateDomain, principal: CurrentPrincipal) -> Response:
        row = await ctx.domains.set_ed25519(
            principal.tenant_id, normalize_domain(name), body.dkim_ed25519
        )
        return ok(present(row))

    @api.post(
        "/{name}/verify",
        summary="Check the domain's records by DNS now",
        description="Queries each record through POSTWIRE_DNS_NAMESERVERS and answers its "
        "status (ok, wrong, missing; pending when DNS did not answer) with the value found. "
        "The domain is usable (may send) once SPF and DKIM pass, verified once MX passes "
        "too; DMARC is optional, and so is the Ed25519 DKIM record (its key signs only "
        "while it passes).",
    )
    async def verify(name: str, principal: CurrentPrincipal) -> Response:
        return ok(present(await ctx.domains.verify(principal.tenant_id, normalize_domain(name))))

    @api.post(
        "/{name}/dkim/rotate",
        summary="Make a new DKIM key; it signs once its record verifies",
        description="Answers the domain with a `dkim_next` record to publish next to the "
        "current one. The next verify (or background re-check) that finds it makes it the "
        "signing key; mail accepted before keeps the key it was accepted with. A domain "
        "with Ed25519 on gets a new Ed25519 key at once (a new `dkim_ed25519` record): it "
        "signs once that record verifies, the RSA key signing alone meanwhile.",
    )
    async def rotate(name: str, principal: CurrentPrincipal) -> Response:
        return ok(present(await ctx.domains.rotate(principal.tenant_id, normalize_domain(name))))

    @api.delete("/{name}", summary="Delete a domain and its senders")
    async def delete(name: str, principal: CurrentPrincipal) -> Response:
        await ctx.store.delete_domain(principal.tenant_id, normalize_domain(name))
        ctx.sender.forget_senders(principal.tenant_id)  # its senders went with it
        return ok(None)

    return api
