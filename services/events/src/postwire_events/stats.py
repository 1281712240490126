"""Sending and tracking statistics: what each event counts, where, and the rates.

::

    record_many, one transaction:
        event_log insert ─▶ new events ─┐
        messages upsert ─▶ their rows ──┴▶ deltas() ─▶ stats_hourly, stats_daily += (last)
    recount (store, ``postwire stats-recount``): the same counters rebuilt from the log

Counters are pre-aggregated per (account, period, domain, label, api_user, template_id,
task_id), ``''`` for an absent dimension; ``domain`` is the sender address's domain,
lower-cased. Every counter of a message is bucketed by its ``recv_time`` (when it was
accepted, UTC hour and day; months are summed from days), not by when the event
happened: a period's success rate then compares the requests of that period with what
became of exactly those requests.

What counts (one event, one count; a repeated event counts nothing):

- ``requests``: request events; ``delivered``, ``soft_bounces``: those events;
- ``invalid``: invalid events (never sent: suppressed, or no such domain);
- ``failed``: failed events, every status (2 invalid address, 3 spam, 4 other);
  ``spam``: those of them with status 3, so ``spam`` is part of ``failed``. A bounce
  after delivery counts in ``delivered`` and in ``failed``;
- ``opens``, ``clicks``: those made by the recipient; ``machine_opens``,
  ``machine_clicks``: those a privacy proxy or link scanner made (``machine`` set);
- ``unique_opens``, ``unique_clicks``: messages with at least one human open (click),
  counted at the first (``messages.first_open``/``first_click`` hold its event id);
- ``spam_reports``, ``unsubscribes``: those events.

A message counts once its request event is recorded, which fixes its dimensions (api
user, template and task come only with it). Events recorded before it (a result that
overtook its request on the bus) wait in the log and are counted when it comes.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum

from postwire_common.schemas import DeliveryStatus, EventType

COUNTERS = (
    "requests",
    "delivered",
    "soft_bounces",
    "invalid",
    "spam",
    "failed",
    "opens",
    "unique_opens",
    "clicks",
    "unique_clicks",
    "machine_opens",
    "machine_clicks",
    "spam_reports",
    "unsubscribes",
)
DIMENSIONS = ("domain", "label", "api_user", "template_id", "task_id")
_INDEX = {name: i for i, name in enumerate(COUNTERS)}

MAX_RANGE = timedelta(days=366)  # a year, leap years included
RATE_DIGITS = 4


class Granularity(StrEnum):
    HOUR = "hour"
    DAY = "day"
    MONTH = "month"


def counted_as(event: str, status: int | None, machine: str | None, first: bool) -> list[str]:
    """The counters one new event adds 1 to; ``first``: it is its message's first human
    open or click."""
    kind = EventType(event)
    if kind is EventType.FAILED:
        return ["failed", "spam"] if status == DeliveryStatus.SPAM else ["failed"]
    if kind in (EventType.OPEN, EventType.CLICK):
        noun = "opens" if kind is EventType.OPEN else "clicks"
        if machine is not None:
            return [f"machine_{noun}"]
        return [noun, f"unique_{noun}"] if first else [noun]
    return [_SIMPLE[kind]]


_SIMPLE = {
    EventType.REQUEST: "requests",
    EventType.DELIVERED: "delivered",
    EventType.SOFT_BOUNCE: "soft_bounces",
    EventType.INVALID: "invalid",
    EventType.SPAM_REPORT: "spam_reports",
    EventType.UNSUBSCRIBE: "unsubscribes",
}


def hour_of(t: datetime) -> datetime:
    return t.astimezone(UTC).replace(minute=0, second=0, microsecond=0)


def day_of(t: datetime) -> datetime:
    return hour_of(t).replace(hour=0)


def month_of(t: datetime) -> datetime:
    return day_of(t).replace(day=1)


def period_of(t: datetime, granularity: Granularity) -> datetime:
    return {Granularity.HOUR: hour_of, Granularity.DAY: day_of, Granularity.MONTH: month_of}[
        granularity
    ](t)


# (tenant_id, period, domain, label, api_user, template_id, task_id)
Key = tuple[str, datetime, str, str, str, str, str]


@dataclass(frozen=True, slots=True)
class Counted:
    """A new event with its message's dimensions, as the record statement returns it."""

    tenant_id: str
    recv_time: datetime
    domain: str
    label: str | None
    api_user: str | None
    template_id: str | None
    task_id: str | None
    counters: tuple[str, ...]


def deltas(counted: Iterable[Counted]) -> tuple[list[tuple[Key, list[int]]], ...]:
    """Hourly and daily deltas, one row per key, in key order (the order rows are locked
    in, the same in every replica, so concurrent batches cannot deadlock)."""
    hourly: dict[Key, list[int]] = {}
    daily: dict[Key, list[int]] = {}
    for c in counted:
        dims = (c.domain, c.label or "", c.api_user or "", c.template_id or "", c.task_id or "")
        for table, period in ((hourly, hour_of(c.recv_time)), (daily, day_of(c.recv_time))):
            row = table.setdefault((c.tenant_id, period, *dims), [0] * len(COUNTERS))
            for name in c.counters:
                row[_INDEX[name]] += 1
    return sorted(hourly.items()), sorted(daily.items())


def rate(part: int, whole: int) -> float:
    """``part / whole`` rounded to 4 decimals, 0 when ``whole`` is 0. Every rate the API
    shows is this."""
    return round(part / whole, RATE_DIGITS) if whole else 0.0


def sending_row(period: datetime, c: dict[str, int]) -> dict[str, object]:
    requests = c["requests"]
    return {
        "period": period,
        **{k: c[k] for k in ("requests", "delivered", "soft_bounces", "invalid", "spam")},
        "failed": c["failed"],
        "success_rate": rate(c["delivered"], requests),
        "invalid_rate": rate(c["invalid"], requests),
    }


def tracking_row(period: datetime, c: dict[str, int]) -> dict[str, object]:
    names = ("delivered", "opens", "unique_opens", "clicks", "unique_clicks")
    return {
        "period": period,
        **{k: c[k] for k in names},
        "spam_reports": c["spam_reports"],
        "unsubscribes": c["unsubscribes"],
        "machine_opens": c["machine_opens"],
        "machine_clicks": c["machine_clicks"],
    }


def report_row(period: datetime, c: dict[str, int]) -> dict[str, object]:
    """KooMessage's report: sent = requests, successful = delivered, failed = failed,
    rejected = invalid, to_send = what has no result yet (never below 0: a bounce after
    delivery is in both successful and failed), delivery_rate = delivered / requests."""
    sent, done = c["requests"], c["delivered"] + c["failed"] + c["invalid"]
    return {
        "period": period,
        "sent": sent,
        "successful": c["delivered"],
        "failed": c["failed"],
        "to_send": max(sent - done, 0),
        "rejected": c["invalid"],
        "delivery_rate": rate(c["delivered"], sent),
    }


DEFAULT_SPAN = {
    Granularity.HOUR: timedelta(days=1),
    Granularity.DAY: timedelta(days=30),
    Granularity.MONTH: timedelta(days=365),
}


def next_period(start: datetime, granularity: Granularity) -> datetime:
    if granularity is Granularity.HOUR:
        return start + timedelta(hours=1)
    if granularity is Granularity.DAY:
        return start + timedelta(days=1)
    return start.replace(year=start.year + start.month // 12, month=start.month % 12 + 1)


def bounds(since: datetime, until: datetime, granularity: Granularity) -> tuple[datetime, datetime]:
    """The periods to show: every one that overlaps [since, until), whole. Raises
    ``ValueError`` for an empty range or one longer than a year."""
    if until <= since:
        raise ValueError("until must be after since")
    if until - since > MAX_RANGE:
        raise ValueError("since and until must be at most a year (366 days) apart")
    start, last = period_of(since, granularity), period_of(until, granularity)
    return start, last if last == until else next_period(last, granularity)
