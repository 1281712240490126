"""Aliyun DirectMail's reads (``POST /``, ``postwire_common.vendors.aliyun``) over the
same statistics and message status as ``/v1/stats`` and ``/v1/messages``.

::

    SenderStatisticsByTagNameAndBatchID ──▶ stats_store.totals, by day
    SenderStatisticsDetailByParam       ──▶ EventsStore.messages, finished ones only

A message's Status is Aliyun's: 0 delivered, 2 invalid address (suppressed included),
3 spam, 4 failed. Aliyun has no code for a message still queued or soft-bounced, so the
details list a message once it has finished.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg

from postwire_common.errors import InvalidValue
from postwire_common.http.actions import Action
from postwire_common.http.cursors import decode_cursor, encode_cursor
from postwire_common.vendors.aliyun import AliyunError, Call, action
from postwire_events import stats_store
from postwire_events.stats import Granularity, rate
from postwire_events.store import EventsStore, MessageQuery

MAX_STAT_DAYS = 31  # Aliyun: StartTime to EndTime
MAX_DETAIL_SPAN = timedelta(days=30)
DETAIL_PAGES = 10  # store pages read to fill one answer of finished messages
# Aliyun's Status -> the message status it can only be (None: several, by status code).
STATUS_TEXT = {0: "delivered", 2: None, 3: "failed", 4: "failed"}


def parse_time(call: Call, name: str, fmt: str) -> datetime | None:
    value = call.get(name)
    if value is None:
        return None
    try:
        return datetime.strptime(value, fmt).replace(tzinfo=UTC)
    except ValueError:
        shown = fmt.replace("%Y", "yyyy").replace("%m", "MM").replace("%d", "dd")
        shown = shown.replace("%H", "HH").replace("%M", "mm")
        raise AliyunError("InvalidParameter", f"{name} must be {shown} (UTC)") from None


def percent(part: int, whole: int) -> str:
    return f"{rate(part, whole) * 100:.2f}%"


def stat_row(day: datetime, c: dict[str, int]) -> dict[str, str]:
    """One day in Aliyun's shape: failed counts spam (3) and failed (4), unavailable is
    invalid (2); counts are strings, as Aliyun sends them."""
    failed, invalid = c["failed"] + c["spam"], c["invalid"]
    return {
        "CreateTime": day.strftime("%Y-%m-%d"),
        "requestCount": str(c["requests"]),
        "successCount": str(c["delivered"]),
        "faildCount": str(failed),
        "unavailableCount": str(invalid),
        "succeededPercent": percent(c["delivered"], c["requests"]),
        "unavailablePercent": percent(invalid, c["requests"]),
    }


def detail_row(m: dict[str, Any]) -> dict[str, Any]:
    changed: datetime = m["status_time"]
    return {
        "AccountName": m["sender"],
        "ToAddress": m["rcpt"],
        "Subject": m["subject"] or "",
        "Status": m["status_code"],
        "Message": m["err_msg"] or "",
        "LastUpdateTime": changed.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S"),
        "UtcLastUpdateTime": str(int(changed.timestamp())),
    }


def statistics(pool: asyncpg.Pool) -> Action:
    async def run(call: Call) -> dict[str, Any]:
        call.only(("StartTime", "EndTime", "TagName", "Domain"))
        start = parse_time(call, "StartTime", "%Y-%m-%d")
        end = parse_time(call, "EndTime", "%Y-%m-%d")
        if start is None or end is None:
            raise AliyunError("MissingParameter", "StartTime and EndTime are mandatory.")
        if not timedelta(0) <= end - start < timedelta(days=MAX_STAT_DAYS):
            raise AliyunError(
                "InvalidParameter", f"EndTime is from StartTime to {MAX_STAT_DAYS} days after"
            )
        query = stats_store.StatsQuery(
            call.principal.tenant_id,
            Granularity.DAY,
            since=start,
            until=end + timedelta(days=1),  # EndTime's day included
            domain=call.get("Domain"),
            label=call.get("TagName"),
        )
        rows = [stat_row(day, c) for day, c in await stats_store.totals(pool, query)]
        return {"TotalCount": len(rows), "data": {"stat": rows}}

    return action("SenderStatisticsByTagNameAndBatchID", run)


def details(store: EventsStore) -> Action:
    async def run(call: Call) -> dict[str, Any]:
        call.only(
            ("ToAddress", "AccountName", "TagName", "StartTime", "EndTime", "Status", "Length",
             "NextStart")
        )  # fmt: skip
        until = parse_time(call, "EndTime", "%Y-%m-%d %H:%M") or datetime.now(UTC)
        since = parse_time(call, "StartTime", "%Y-%m-%d %H:%M") or until - MAX_DETAIL_SPAN
        if not timedelta(0) <= until - since <= MAX_DETAIL_SPAN:
            raise AliyunError("InvalidParameter", "EndTime is from StartTime to 30 days after")
        status = call.get("Status")
        code = int(status) if status is not None and status.isdigit() else None
        if status is not None and code not in STATUS_TEXT:
            raise AliyunError("InvalidParameter", "Status must be 0, 2, 3 or 4")
        length = call.integer("Length", 100, 1, 100)
        cursor = call.get("NextStart")
        try:
            after = decode_cursor(cursor) if cursor else None
        except InvalidValue:
            raise AliyunError(
                "InvalidParameter", "NextStart is not one postwire returned"
            ) from None
        found: list[dict[str, Any]] = []
        more = True
        for _ in range(DETAIL_PAGES):
            page = await store.messages(
                MessageQuery(
                    call.principal.tenant_id,
                    since=since,
                    until=until + timedelta(minutes=1),  # EndTime's minute included
                    status=STATUS_TEXT.get(code) if code is not None else None,
                    rcpt=call.get("ToAddress"),
                    sender=call.get("AccountName"),
                    label=call.get("TagName"),
                    limit=length,
                    after=after,
                )
            )
            more = len(page) == length
            for m in page:
                after = (m["recv_time"], m["env_id"])
                if m["status_code"] is not None and code in (None, m["status_code"]):
                    found.append(m)
                    if len(found) == length:
                        more = True  # the rest of this page, at least, is unread
                        break
            if len(found) == length or not more:
                break
        next_start = encode_cursor(*after) if more and after is not None else ""
        return {"NextStart": next_start, "data": {"mailDetail": [detail_row(m) for m in found]}}

    return action("SenderStatisticsDetailByParam", run)


def actions(pool: asyncpg.Pool, store: EventsStore) -> list[Action]:
    return [statistics(pool), details(store)]
