"""``/v1/suppressions``: an account's suppression list (list, add, remove)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Query, Response
from pydantic import Field

from postwire_common.addresses import normalize_address
from postwire_common.http.auth import CurrentPrincipal
from postwire_common.http.cursors import decode_cursor, next_cursor
from postwire_common.http.envelope import ok
from postwire_common.http.models import RequestModel
from postwire_common.http.routes import ApiRoute
from postwire_common.schemas import SuppressionReason
from postwire_events.suppression_store import SuppressionStore
from postwire_events.suppressions import Suppression


class AddSuppression(RequestModel):
    address: str = Field(description="The address to stop sending to.")
    reason: SuppressionReason = Field(
        SuppressionReason.MANUAL,
        description="hard_bounce | complaint | unsubscribe | manual (default).",
    )


def present(row: dict[str, Any]) -> dict[str, Any]:
    return {
        "address": row["address"],
        "reason": row["reason"],
        "source_env_id": row["source_env_id"],
        "created_at": row["created_at"],
    }


def lowered(address: str) -> str:
    return normalize_address(address).lower()


def router(store: SuppressionStore) -> APIRouter:
    api = APIRouter(prefix="/v1/suppressions", tags=["suppressions"], route_class=ApiRoute)

    @api.get("", summary="List suppressed addresses, newest first")
    async def list_(
        principal: CurrentPrincipal,
        reason: Annotated[SuppressionReason | None, Query(description="Only this reason.")] = None,
        address: Annotated[
            str | None, Query(max_length=320, description="Part of the address.")
        ] = None,
        limit: Annotated[int, Query(ge=1, le=500)] = 50,
        cursor: Annotated[str | None, Query(description="next_cursor of the last page")] = None,
    ) -> Response:
        rows = await store.list(
            principal.tenant_id,
            reason=reason,
            address=address,
            limit=limit,
            after=decode_cursor(cursor) if cursor else None,
        )
        following = next_cursor(rows, limit, key="address")
        return ok({"suppressions": [present(r) for r in rows], "next_cursor": following})

    @api.post("", status_code=201, summary="Add an address: sending to it answers 'suppressed'")
    async def add(body: AddSuppression, principal: CurrentPrincipal) -> Response:
        entry = Suppression(
            principal.tenant_id, lowered(body.address), body.reason, None, datetime.now(UTC)
        )
        return ok(present(await store.add(entry)), status=201)

    @api.delete("/{address}", summary="Remove an address: mail to it is sent again")
    async def remove(address: str, principal: CurrentPrincipal) -> Response:
        await store.remove(principal.tenant_id, lowered(address), datetime.now(UTC))
        return ok()

    return api
