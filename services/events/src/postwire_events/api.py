"""Sending details: ``GET /v1/messages`` (search) and ``GET /v1/messages/{env_id}``."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from dataclasses import replace
from typing import Annotated, Any

from fastapi import APIRouter, Query, Response

from postwire_common.errors import InvalidValue, NotFound
from postwire_common.http.auth import CurrentPrincipal
from postwire_common.http.cursors import decode_cursor, encode_cursor
from postwire_common.http.envelope import ok
from postwire_common.http.routes import ApiRoute
from postwire_common.instants import Instant
from postwire_common.schemas import MNS_EVENT_TYPES, EventType, SendMethod
from postwire_events.csv_export import CSV_RESPONSES, csv_response
from postwire_events.devices import device
from postwire_events.status import STATUSES
from postwire_events.store import EventsStore, MessageQuery


def present_message(row: dict[str, Any]) -> dict[str, Any]:
    return {
        "env_id": row["env_id"],
        "msg_id": row["msg_id"],
        "from": row["sender"],
        "rcpt": row["rcpt"],
        "subject": row["subject"],
        "label": row["label"],
        "method": row["method"],
        "template_id": row["template_id"],
        "task_id": row["task_id"],
        "api_user": row["api_user"],
        "status": row["status"],
        "status_code": row["status_code"],
        "err_code": row["err_code"],
        "err_msg": row["err_msg"],
        "recv_time": row["recv_time"],
        "updated_at": row["updated_at"],
    }


def event_fields(row: dict[str, Any]) -> dict[str, Any]:
    """What an event says, in a timeline and in the event list alike."""
    event = EventType(row["event"])
    return {
        "event": event.value,
        "type": MNS_EVENT_TYPES[event],
        "time": row["time"],
        "status": row["status"],
        "err_code": row["err_code"],
        "err_msg": row["err_msg"],
        "url": row["url"],
        # Opens, clicks and unsubscribes: who (SendCloud's IP and device columns).
        "ip": row["ip"],
        "user_agent": row["user_agent"],
        "device": device(row["user_agent"]),
        "machine": row["machine"],
    }


def present_event(row: dict[str, Any]) -> dict[str, Any]:
    return {**event_fields(row), "attempt": row["attempt"]}


CSV_COLUMNS = ("env_id", "msg_id", "from", "rcpt", "subject", "label", "method",
               "template_id", "task_id", "api_user", "status", "status_code", "err_code",
               "err_msg", "recv_time", "updated_at")  # fmt: skip
CSV_PAGE = 1000


async def every_page(
    store: EventsStore, q: MessageQuery
) -> AsyncIterator[Sequence[dict[str, Any]]]:
    """Every message of ``q`` from its cursor on, a page at a time (the listing's own
    query and order), so a download of any size holds one page in memory."""
    q = replace(q, limit=CSV_PAGE)
    while True:
        rows = await store.messages(q)
        yield [present_message(r) for r in rows]
        if len(rows) < CSV_PAGE:
            return
        q = replace(q, after=(rows[-1]["recv_time"], rows[-1]["env_id"]))


def router(store: EventsStore) -> APIRouter:
    api = APIRouter(prefix="/v1/messages", tags=["messages"], route_class=ApiRoute)

    @api.get("", summary="Search sent messages (sending details)", responses=CSV_RESPONSES)
    async def search(
        principal: CurrentPrincipal,
        since: Annotated[Instant | None, Query(description="Accepted at or after.")] = None,
        until: Annotated[Instant | None, Query(description="Accepted before.")] = None,
        status: Annotated[str | None, Query(description=" | ".join(STATUSES))] = None,
        rcpt: str | None = None,
        sender: Annotated[str | None, Query(alias="from")] = None,
        subject: Annotated[str | None, Query(description="Part of the subject.")] = None,
        label: str | None = None,
        limit: Annotated[int, Query(ge=1, le=500)] = 50,
        cursor: Annotated[str | None, Query(description="next_cursor of the last page")] = None,
        method: Annotated[SendMethod | None, Query(description="api, smtp or task.")] = None,
        task_id: Annotated[str | None, Query(max_length=64)] = None,
        template_id: Annotated[str | None, Query(max_length=64)] = None,
        api_user: Annotated[str | None, Query(description="API user that sent it.")] = None,
        format: Annotated[
            str,
            Query(
                pattern="^(json|csv)$",
                description="json, or csv: every matching "
                "message (limit does not apply), as a download.",
            ),
        ] = "json",
    ) -> Response:
        if status is not None and status not in STATUSES:
            raise InvalidValue(f"status must be one of {', '.join(STATUSES)}")
        q = MessageQuery(
            principal.tenant_id,
            since=since,
            until=until,
            status=status,
            rcpt=rcpt,
            sender=sender,
            subject=subject,
            label=label,
            method=method.value if method else None,
            template_id=template_id,
            task_id=task_id,
            api_user=api_user,
            limit=limit,
            after=decode_cursor(cursor) if cursor else None,
        )
        if format == "csv":
            return csv_response("messages.csv", CSV_COLUMNS, every_page(store, q))
        rows = await store.messages(q)
        next_cursor = (
            encode_cursor(rows[-1]["recv_time"], rows[-1]["env_id"]) if len(rows) == limit else None
        )
        return ok({"messages": [present_message(r) for r in rows], "next_cursor": next_cursor})

    @api.get("/{env_id}", summary="One message with its event timeline")
    async def show(env_id: str, principal: CurrentPrincipal) -> Response:
        row = await store.message(principal.tenant_id, env_id)
        if row is None:
            raise NotFound(f"no message {env_id}")
        message = present_message(row)
        message["events"] = [present_event(e) for e in await store.timeline(env_id)]
        return ok(message)

    return api
