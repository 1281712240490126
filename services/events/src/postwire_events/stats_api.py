"""Statistics: ``GET /v1/stats/sending``, ``/v1/stats/tracking`` and ``/v1/stats/reports``.

All three read the same counters (``stats.py``) of the caller's account only, by hour,
day or month (UTC; months are summed from days). A period is shown whole when it
overlaps [since, until), and only when it has data: no row is a period without mail.
``format=csv`` downloads the same rows as CSV.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from enum import StrEnum
from typing import Annotated, Any

import asyncpg
from fastapi import APIRouter, Depends, Query, Response

from postwire_common.errors import InvalidValue
from postwire_common.http.auth import CurrentPrincipal
from postwire_common.http.envelope import ok
from postwire_common.http.routes import ApiRoute
from postwire_common.instants import Instant
from postwire_events.csv_export import CSV_RESPONSES, csv_response, one_page
from postwire_events.stats import (
    DEFAULT_SPAN,
    Granularity,
    bounds,
    report_row,
    sending_row,
    tracking_row,
)
from postwire_events.stats_store import StatsQuery, totals


class Format(StrEnum):
    JSON = "json"
    CSV = "csv"


SENDING = ("period", "requests", "delivered", "soft_bounces", "invalid", "spam", "failed",
           "success_rate", "invalid_rate")  # fmt: skip
TRACKING = ("period", "delivered", "opens", "unique_opens", "clicks", "unique_clicks",
            "spam_reports", "unsubscribes", "machine_opens", "machine_clicks")  # fmt: skip
REPORTS = ("period", "sent", "successful", "failed", "to_send", "rejected", "delivery_rate")


async def stats_query(
    principal: CurrentPrincipal,
    granularity: Annotated[Granularity, Query(description="hour, day or month (UTC).")] = (
        Granularity.DAY
    ),
    since: Annotated[
        Instant | None,
        Query(
            description="From the period holding this time [default: until minus a day "
            "(hour), 30 days (day) or 365 days (month)]."
        ),
    ] = None,
    until: Annotated[
        Instant | None,
        Query(
            description="To the period holding the instant before it [default: now]; at "
            "most a year after since."
        ),
    ] = None,
    domain: Annotated[str | None, Query(description="Sender domain.")] = None,
    label: str | None = None,
    api_user: Annotated[str | None, Query(description="API user that sent the mail.")] = None,
    template_id: Annotated[str | None, Query(max_length=64)] = None,
    task_id: Annotated[str | None, Query(max_length=64)] = None,
) -> StatsQuery:
    until = until or datetime.now(UTC)
    since = since or until - DEFAULT_SPAN[granularity]
    try:
        start, end = bounds(since, until, granularity)
    except ValueError as e:
        raise InvalidValue(str(e)) from None
    return StatsQuery(
        principal.tenant_id, granularity, start, end, domain=domain, label=label,
        api_user=api_user, template_id=template_id, task_id=task_id,
    )  # fmt: skip


Stats = Annotated[StatsQuery, Depends(stats_query)]
FormatQuery = Annotated[Format, Query(description="json (the envelope) or csv.")]


def router(pool: asyncpg.Pool) -> APIRouter:
    api = APIRouter(prefix="/v1/stats", tags=["statistics"], route_class=ApiRoute)

    async def answer(
        q: StatsQuery,
        form: Format,
        name: str,
        columns: tuple[str, ...],
        row: Callable[[datetime, dict[str, int]], dict[str, Any]],
    ) -> Response:
        rows = [row(period, counts) for period, counts in await totals(pool, q)]
        if form is Format.CSV:
            return csv_response(f"{name}-{q.granularity.value}.csv", columns, one_page(rows))
        return ok({"granularity": q.granularity, "since": q.since, "until": q.until, "rows": rows})

    @api.get(
        "/sending",
        responses=CSV_RESPONSES,
        summary="Sending statistics by period",
        description="Rows `{period, requests, delivered, soft_bounces, invalid, spam, failed, "
        "success_rate, invalid_rate}`. Every count of a message is in the period it was "
        "accepted in (recv_time). `invalid`: never sent (suppressed, no such domain); "
        "`failed`: failed events of every status (2 invalid address, 3 spam, 4 other); "
        "`spam`: those with status 3, part of `failed`. `success_rate` = delivered / "
        "requests, `invalid_rate` = invalid / requests: 0 to 1, 4 decimals, 0 without "
        "requests. Only periods with data have rows.",
    )
    async def sending(q: Stats, format: FormatQuery = Format.JSON) -> Response:
        return await answer(q, format, "sending", SENDING, sending_row)

    @api.get(
        "/tracking",
        responses=CSV_RESPONSES,
        summary="Tracking statistics by period",
        description="Rows `{period, delivered, opens, unique_opens, clicks, unique_clicks, "
        "spam_reports, unsubscribes, machine_opens, machine_clicks}`. `opens` and `clicks` "
        "are the recipients'; those of mail privacy proxies and link scanners are "
        "`machine_opens` and `machine_clicks`, apart. `unique_opens` (`unique_clicks`): "
        "messages with at least one open (click) by the recipient. Counted in the period "
        "the message was accepted in.",
    )
    async def tracking(q: Stats, format: FormatQuery = Format.JSON) -> Response:
        return await answer(q, format, "tracking", TRACKING, tracking_row)

    @api.get(
        "/reports",
        responses=CSV_RESPONSES,
        summary="Sending report (KooMessage) by period",
        description="Rows `{period, sent, successful, failed, to_send, rejected, "
        "delivery_rate}`: sent = requests, successful = delivered, failed = failed, "
        "rejected = invalid, to_send = requests - delivered - failed - invalid (at least "
        "0), delivery_rate = delivered / requests (4 decimals).",
    )
    async def reports(q: Stats, format: FormatQuery = Format.JSON) -> Response:
        return await answer(q, format, "reports", REPORTS, report_row)

    return api
