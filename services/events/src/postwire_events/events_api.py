"""An account's events by type: ``GET /v1/events`` (SendCloud's open, click,
unsubscribe, complaint, bounce and invalid lists), newest first, from the event log."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Query, Response

from postwire_common.errors import InvalidValue
from postwire_common.http.auth import CurrentPrincipal
from postwire_common.http.cursors import decode_cursor, encode_cursor
from postwire_common.http.envelope import ok
from postwire_common.http.routes import ApiRoute
from postwire_common.instants import Instant
from postwire_common.schemas import EventType
from postwire_events.api import event_fields
from postwire_events.store import EventQuery, EventsStore

DEFAULT_SPAN = timedelta(days=7)


def present(row: dict[str, Any]) -> dict[str, Any]:
    """An event with the message it belongs to."""
    return {
        **event_fields(row),
        "env_id": row["env_id"],
        "msg_id": row["msg_id"],
        "from": row["sender"],
        "rcpt": row["rcpt"],
        "label": row["label"],
        "api_user": row["api_user"],
    }


def kinds(given: str | None) -> tuple[str, ...]:
    """``event``: one type or several, comma-separated; all when absent."""
    if not given:
        return tuple(e.value for e in EventType)
    names = tuple(n.strip() for n in given.split(",") if n.strip())
    known = {e.value for e in EventType}
    for name in names:
        if name not in known:
            raise InvalidValue(f"event must be among {', '.join(sorted(known))}")
    return names


def router(store: EventsStore) -> APIRouter:
    api = APIRouter(prefix="/v1/events", tags=["events"], route_class=ApiRoute)

    @api.get(
        "",
        summary="List events (opens, clicks, unsubscribes, complaints, bounces, …)",
        description="Newest first. `event`: one type or a comma-separated list (request, "
        "delivered, soft_bounce, failed, invalid, open, click, unsubscribe, spam_report); "
        "all when absent. Opens, clicks and unsubscribes show the client's `ip`, "
        "`user_agent`, `device` (iPhone, Android, Windows, Mac, …) and `machine` (null: the "
        "recipient; privacy_proxy, scanner). Events are kept for "
        "POSTWIRE_EVENT_LOG_RETENTION.",
    )
    async def listing(
        principal: CurrentPrincipal,
        event: Annotated[str | None, Query(description="Type(s), comma-separated.")] = None,
        since: Annotated[Instant | None, Query(description="At or after [until - 7 days].")] = (
            None
        ),
        until: Annotated[Instant | None, Query(description="Before [now].")] = None,
        rcpt: str | None = None,
        label: str | None = None,
        api_user: str | None = None,
        limit: Annotated[int, Query(ge=1, le=500)] = 50,
        cursor: Annotated[str | None, Query(description="next_cursor of the last page")] = None,
    ) -> Response:
        until = until or datetime.now(UTC)
        since = since or until - DEFAULT_SPAN
        if until <= since:
            raise InvalidValue("until must be after since")
        rows = await store.events(
            EventQuery(
                principal.tenant_id, since, until, kinds(event), rcpt=rcpt, label=label,
                api_user=api_user, limit=limit,
                after=decode_cursor(cursor) if cursor else None,
            )
        )  # fmt: skip
        next_cursor = (
            encode_cursor(rows[-1]["time"], rows[-1]["event_id"]) if len(rows) == limit else None
        )
        return ok({"events": [present(r) for r in rows], "next_cursor": next_cursor})

    return api
