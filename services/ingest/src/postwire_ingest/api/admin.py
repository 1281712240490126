"""Operator routes: ``Authorization: Bearer <POSTWIRE_ADMIN_TOKEN>``."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request, Response

from postwire_common.errors import InvalidValue, NotFound
from postwire_common.http.auth import AdminAccess
from postwire_common.http.cursors import decode_cursor, next_cursor
from postwire_common.http.envelope import envelope_response, ok
from postwire_common.http.routes import ApiRoute
from postwire_ingest import accounts
from postwire_ingest.api.context import IngestContext
from postwire_ingest.api.models import CreateAccount
from postwire_ingest.api.template_models import CreateTemplate, RejectTemplate, SetSensitive
from postwire_ingest.api.templates import (
    content_body,
    created,
    present,
    read_content,
    summary,
)
from postwire_ingest.domains import normalize_domain
from postwire_ingest.templates import Status, check_draft


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

    templates(api, ctx)
    return api


def templates(api: APIRouter, ctx: IngestContext) -> None:
    """Sensitive accounts, the review of their templates, and public templates."""
    reviews = ctx.template_reviews

    @api.put(
        "/accounts/{name}/sensitive",
        summary="Mark an account as in a sensitive industry, or not",
        description="A sensitive account's new and changed templates are `approving` until "
        "an operator approves them (KooMessage). Templates it has keep their status.",
    )
    async def set_sensitive(name: str, body: SetSensitive) -> Response:
        return ok(await reviews.set_sensitive(name, body.sensitive))

    @api.get("/templates", summary="Accounts' templates, oldest first (the review queue)")
    async def list_templates(
        status: Annotated[Status | None, Query(description="e.g. approving")] = None,
        account: Annotated[str | None, Query(max_length=48, description="Account name")] = None,
        limit: Annotated[int, Query(ge=1, le=500)] = 50,
        cursor: Annotated[str | None, Query(description="next_cursor of the last page")] = None,
    ) -> Response:
        after = decode_cursor(cursor) if cursor else None
        rows = await reviews.reviewable(status, account, limit, after)
        following = next_cursor(rows, limit)
        found = [{"account": r["account"], **summary(r)} for r in rows]
        return ok({"templates": found, "next_cursor": following})

    @api.get("/templates/{template_id}", summary="Show any account's template, to review it")
    async def show_template(
        template_id: str,
        version: Annotated[int | None, Query(ge=1, le=2_147_483_647)] = None,
    ) -> Response:
        template = await reviews.get(template_id, version)
        return ok({"account_id": template.account_id, **present(template)})

    @api.post(
        "/templates/{template_id}/approve",
        summary="Approve an account's template: it can be sent",
        description="Answers `not_changed` when it is approved already.",
    )
    async def approve(template_id: str) -> Response:
        changed = await reviews.review(template_id, Status.APPROVED, None)
        result = {"id": template_id, "status": Status.APPROVED}
        if not changed:
            return envelope_response(result, code="not_changed", description="approved already")
        return ok(result)

    @api.post(
        "/templates/{template_id}/reject",
        summary="Reject an account's template: it cannot be sent until changed",
    )
    async def reject(template_id: str, body: RejectTemplate) -> Response:
        changed = await reviews.review(template_id, Status.REJECTED, body.reason)
        result = {"id": template_id, "status": Status.REJECTED, "reject_reason": body.reason}
        if not changed:
            return envelope_response(result, code="not_changed", description="rejected already")
        return ok(result)

    @api.post(
        "/templates",
        status_code=201,
        summary="Publish a public template",
        description="Every account sees it, may send it and copy it; none may change or "
        "delete it. As `POST /v1/templates`: JSON, or multipart/form-data with `html` a file.",
        openapi_extra=content_body(CreateTemplate),
    )
    async def publish(request: Request) -> Response:
        body = await read_content(request, CreateTemplate)
        draft = body.draft()
        template = await reviews.publish(draft, body.type, check_draft(draft))
        return ok(created(template), status=201)

    @api.delete(
        "/templates/{template_id}",
        summary="Delete a public template",
        description="Copies accounts made stay theirs.",
    )
    async def delete_public(template_id: str) -> Response:
        await reviews.delete_public(template_id)
        return ok(None)
