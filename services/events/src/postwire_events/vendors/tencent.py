"""Tencent Cloud SES (2020-10-02) actions that events answers: message status and statistics.

::

    GetSendEmailStatus {RequestDate, Offset, Limit, MessageId?, ToEmailAddress?}
        ──▶ events.messages (the same rows as GET /v1/messages) ──▶ EmailStatusList
    GetStatisticsReport {StartDate, EndDate, Domain?}
        ──▶ the daily counters of GET /v1/stats (stats_store.totals) ──▶ DailyVolumes

SendEmail's MessageId is the env_id of its first recipient: asked for, it finds every
recipient of that request (same acceptance instant, sender and API user; each message
is one recipient's copy). Listed by day, each recipient shows its own env_id.
Wire format, signature and error shape: ``postwire_common.vendors.tencent``.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from functools import partial
from typing import Any

import asyncpg

from postwire_common.http.actions import Action
from postwire_common.schemas import EventType
from postwire_common.vendors.tencent import Call, Params, TencentError, action
from postwire_events.stats import COUNTERS, Granularity
from postwire_events.stats_store import StatsQuery, totals
from postwire_events.store import EventsStore, MessageQuery

MAX_PAGE = 100  # Tencent: Limit of GetSendEmailStatus
MAX_WINDOW = 10_000  # Offset + Limit: deeper pages would scan a whole day of a big account
MAX_DAYS = 366
ONE_INSTANT = timedelta(microseconds=1)

# Our status as Tencent's DeliverStatus: 0 accepted and queued, 1 delivered, 2 dropped,
# 3 refused by the recipient's server, 8 delayed (a soft bounce, retried).
DELIVER_STATUS = {
    "queued": 0,
    "soft_bounced": 8,
    "delivered": 1,
    "failed": 3,
    "invalid": 2,  # never sent: the domain takes no mail
    "suppressed": 2,  # never sent: on the account's suppression list (SendStatus 1007)
}
IN_BLACKLIST = 1007  # Tencent's SendStatus "the address is on the blacklist"
AFTER_DELIVERY = (EventType.UNSUBSCRIBE.value, EventType.SPAM_REPORT.value)


class StatusQuery(Params):
    RequestDate: str
    Limit: int
    Offset: int = 0
    MessageId: str | None = None
    ToEmailAddress: str | None = None


class ReportQuery(Params):
    StartDate: str
    EndDate: str
    Domain: str | None = None
    ReceivingMailboxType: str | None = None


def day(value: str, field: str) -> datetime:
    try:
        return datetime.strptime(value, "%Y-%m-%d").replace(tzinfo=UTC)
    except ValueError:
        raise TencentError(
            "InvalidParameterValue.WrongDate", f"{field} must be a date YYYY-MM-DD"
        ) from None


def seconds(moment: datetime | None) -> int:
    return int(moment.timestamp()) if moment else 0


async def status_of(store: EventsStore, row: Mapping[str, Any], message_id: str) -> dict[str, Any]:
    """One row of EmailStatusList."""
    after: set[str] = set()
    if row["status"] in ("delivered", "failed"):  # unsubscribes and complaints follow delivery
        after = {e["event"] for e in await store.timeline(row["env_id"])} & set(AFTER_DELIVERY)
    complained = EventType.SPAM_REPORT.value in after
    return {
        "MessageId": message_id,
        "ToEmailAddress": row["rcpt"],
        "FromEmailAddress": row["sender"],
        "SendStatus": IN_BLACKLIST if row["status"] == "suppressed" else 0,
        "DeliverStatus": DELIVER_STATUS.get(row["status"], 0),
        "DeliverMessage": row["err_msg"] or "",
        "RequestTime": seconds(row["recv_time"]),
        "DeliverTime": 0 if row["status"] == "queued" else seconds(row["status_time"]),
        "UserOpened": row["first_open"] is not None,
        "UserClicked": row["first_click"] is not None,
        "UserUnsubscribed": EventType.UNSUBSCRIBE.value in after,
        "UserComplainted": complained,  # the SDK's older spelling, and the newer one
        "UserComplained": complained,
    }


async def of_request(
    store: EventsStore, tenant_id: str, p: StatusQuery, start: datetime
) -> list[dict[str, Any]]:
    """Every recipient of the SendEmail whose MessageId is ``p.MessageId``, that day."""
    assert p.MessageId is not None
    first = await store.message(tenant_id, p.MessageId)
    if first is None or not start <= first["recv_time"] < start + timedelta(days=1):
        return []
    q = MessageQuery(
        tenant_id,
        since=first["recv_time"],
        until=first["recv_time"] + ONE_INSTANT,
        sender=first["sender"],
        api_user=first["api_user"],
        rcpt=p.ToEmailAddress,
        limit=p.Offset + p.Limit,
    )
    return await store.messages(q)


async def send_email_status(store: EventsStore, call: Call) -> Mapping[str, Any]:
    p = call.params(StatusQuery)
    if not 1 <= p.Limit <= MAX_PAGE or p.Offset < 0:
        raise TencentError("FailedOperation.InvalidLimit", f"Limit is 1 to {MAX_PAGE}, Offset ≥ 0")
    if p.Offset + p.Limit > MAX_WINDOW:
        raise TencentError(
            "FailedOperation.InvalidLimit", f"Offset + Limit is at most {MAX_WINDOW}"
        )
    start = day(p.RequestDate, "RequestDate")
    tenant = call.principal.tenant_id
    if p.MessageId:
        rows = await of_request(store, tenant, p, start)
    else:
        q = MessageQuery(
            tenant,
            since=start,
            until=start + timedelta(days=1),
            rcpt=p.ToEmailAddress,
            limit=p.Offset + p.Limit,
        )
        rows = await store.messages(q)
    page = rows[p.Offset : p.Offset + p.Limit]
    return {
        "EmailStatusList": [await status_of(store, r, p.MessageId or r["env_id"]) for r in page]
    }


def volume(date: str, c: Mapping[str, int]) -> dict[str, Any]:
    """Our counters as Tencent's Volume: accepted = requests not dropped at once; bounces =
    failed; opens all the recipients' opens; clicks the recipients who clicked."""
    return {
        "SendDate": date,
        "RequestCount": c["requests"],
        "AcceptedCount": c["requests"] - c["invalid"],
        "DeliveredCount": c["delivered"],
        "OpenedCount": c["opens"],
        "ClickedCount": c["unique_clicks"],
        "BounceCount": c["failed"],
        "UnsubscribeCount": c["unsubscribes"],
    }


async def statistics_report(pool: asyncpg.Pool, call: Call) -> Mapping[str, Any]:
    p = call.params(ReportQuery)
    if p.ReceivingMailboxType:
        raise TencentError(
            "UnsupportedOperation",
            "postwire keeps no statistics by the recipient's mailbox provider "
            "(ReceivingMailboxType)",
        )
    start, last = day(p.StartDate, "StartDate"), day(p.EndDate, "EndDate")
    if last < start or (last - start).days >= MAX_DAYS:
        raise TencentError(
            "InvalidParameterValue.WrongDate",
            f"EndDate must be StartDate or after it, at most {MAX_DAYS} days in all",
        )
    end = last + timedelta(days=1)  # EndDate is included
    q = StatsQuery(call.principal.tenant_id, Granularity.DAY, start, end, domain=p.Domain or None)
    found = dict(await totals(pool, q))
    zero = dict.fromkeys(COUNTERS, 0)
    days = [start + timedelta(days=n) for n in range((end - start).days)]
    daily = [volume(d.strftime("%Y-%m-%d"), found.get(d, zero)) for d in days]
    overall = {k: sum(v[k] for v in daily) for k in daily[0] if k != "SendDate"}
    return {"DailyVolumes": daily, "OverallVolume": {"SendDate": "", **overall}}


def actions(store: EventsStore, pool: asyncpg.Pool) -> list[Action]:
    return [
        action("GetSendEmailStatus", partial(send_email_status, store)),
        action("GetStatisticsReport", partial(statistics_report, pool)),
    ]
