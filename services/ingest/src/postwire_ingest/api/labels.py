"""``/v1/labels``: an account's labels (SendCloud), by id."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Response

from postwire_common.errors import InvalidValue
from postwire_common.http.auth import CurrentPrincipal
from postwire_common.http.cursors import decode_cursor, next_cursor
from postwire_common.http.envelope import ok
from postwire_common.http.routes import ApiRoute
from postwire_common.ids import checked_id
from postwire_ingest.api.context import IngestContext
from postwire_ingest.api.models import CreateLabel
from postwire_ingest.limits import MAX_LABELS_PER_ACCOUNT
from postwire_ingest.sending import check_label


def router(ctx: IngestContext) -> APIRouter:
    api = APIRouter(prefix="/v1/labels", tags=["labels"], route_class=ApiRoute)
    store = ctx.labels.store

    @api.post(
        "",
        status_code=201,
        summary="Create a label",
        description="Sending with a `label` that does not exist creates it too. At most "
        f"{MAX_LABELS_PER_ACCOUNT} labels per account.",
    )
    async def create(body: CreateLabel, principal: CurrentPrincipal) -> Response:
        name = check_label(body.name)
        if name is None:
            raise InvalidValue("name must not be empty")
        row = await store.create(principal.tenant_id, name, MAX_LABELS_PER_ACCOUNT)
        return ok(row, status=201)

    @api.get("", summary="List labels, oldest first")
    async def list_(
        principal: CurrentPrincipal,
        limit: Annotated[int, Query(ge=1, le=500)] = 100,
        cursor: Annotated[str | None, Query(description="next_cursor of the last page")] = None,
    ) -> Response:
        after = decode_cursor(cursor) if cursor else None
        rows = await store.list(principal.tenant_id, after=after, limit=limit)
        following = next_cursor(rows, limit)
        return ok({"labels": rows, "next_cursor": following})

    @api.get("/{label_id}", summary="Show a label")
    async def show(label_id: str, principal: CurrentPrincipal) -> Response:
        return ok(await store.get(principal.tenant_id, checked_id(label_id, "label id")))

    @api.delete(
        "/{label_id}",
        summary="Delete a label",
        description="Mail already sent keeps its label in sending details.",
    )
    async def delete(label_id: str, principal: CurrentPrincipal) -> Response:
        await store.delete(principal.tenant_id, checked_id(label_id, "label id"))
        ctx.labels.forget(principal.tenant_id)
        return ok(None)

    return api
