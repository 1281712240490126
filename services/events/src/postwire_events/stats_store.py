"""The SQL of statistics: counters kept with each recorded batch, rebuilt from the event
log, and read by period (see ``stats.py`` for what they count)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import asyncpg

from postwire_events.stats import (
    COUNTERS,
    Counted,
    Granularity,
    Key,
    counted_as,
    day_of,
    deltas,
)

_KEY = "tenant_id, period, domain, label, api_user, template_id, task_id"
_COUNTER_LIST = ", ".join(COUNTERS)
# A batch adds to its connection's shard of each key (16 at most): an account's current
# hour is a row every batch updates, held until the commit, and with one row the
# transactions of all connections and replicas would queue there one by one. Within a
# shard rows are locked in key order, so transactions cannot deadlock.
SHARDS = 16
_ADD_ONE = f"""
    INSERT INTO events.TABLE AS s ({_KEY}, {_COUNTER_LIST}, shard)
    SELECT *, (pg_backend_pid() % {SHARDS})::smallint
    FROM unnest($B::text[], $B::timestamptz[], $B::text[], $B::text[], $B::text[],
        $B::text[], $B::text[], {", ".join("$B::int[]" for _ in COUNTERS)})
    ON CONFLICT ({_KEY}, shard) DO UPDATE SET
        {", ".join(f"{c} = s.{c} + EXCLUDED.{c}" for c in COUNTERS)}
"""  # noqa: S608 - constants


def _numbered(sql: str, start: int) -> str:
    parts = sql.split("$B")
    return "".join(f"{p}${start + i}" if i < len(parts) - 1 else p for i, p in enumerate(parts))


_WIDTH = 7 + len(COUNTERS)
# Hourly and daily deltas of one batch in one statement, each in key order.
_ADD = (
    "WITH hourly AS ("
    + _numbered(_ADD_ONE.replace("TABLE", "stats_hourly"), 1)
    + ")"
    + _numbered(_ADD_ONE.replace("TABLE", "stats_daily"), 1 + _WIDTH)
)

# Events recorded before their message's request: counted when the request comes.
_EARLIER = """
SELECT event_id, env_id, event, status AS code, machine FROM events.event_log
WHERE env_id = ANY($1::text[]) AND event_id <> ALL($2::text[])
"""


@dataclass
class Found:
    """What the record statement returned: new events, and the rows of their messages."""

    events: list[asyncpg.Record] = field(default_factory=list)
    messages: list[asyncpg.Record] = field(default_factory=list)


async def add(conn: asyncpg.Connection, found: Found) -> None:
    """Count the new events of ``found`` (and those that waited for a request that is
    new here). Call it last in the transaction that recorded them."""
    rows = {r["env_id"]: r for r in found.messages}
    events: list[Any] = list(found.events)
    late = {
        e["env_id"]
        for e in found.events
        if e["event"] == "request" and rows[e["env_id"]]["requested"] == 2
    }
    if late:
        new = [e["event_id"] for e in found.events if e["env_id"] in late]
        events += await conn.fetch(_EARLIER, sorted(late), new)
    counted = []
    for e in events:
        m = rows.get(e["env_id"])
        if m is None or m["requested"] == 0:
            continue  # its request is not recorded yet
        first = e["event_id"] in (m["first_open"], m["first_click"])
        counted.append(
            Counted(
                m["tenant_id"], m["recv_time"], m["domain"], m["label"], m["api_user"],
                m["template_id"], m["task_id"],
                tuple(counted_as(e["event"], e["code"], e["machine"], first)),
            )
        )  # fmt: skip
    hourly, daily = deltas(counted)
    if hourly:
        await conn.execute(_ADD, *_columns(hourly), *_columns(daily))


def _columns(rows: Sequence[tuple[Key, list[int]]]) -> list[list[Any]]:
    return [list(c) for c in zip(*(key + tuple(values) for key, values in rows), strict=True)]


# What each counter is, over the event log joined with the messages (the one definition
# the recount uses; stats.counted_as is the same, per event).
_FROM_LOG = {
    "requests": "count(*) FILTER (WHERE l.event = 'request')",
    "delivered": "count(*) FILTER (WHERE l.event = 'delivered')",
    "soft_bounces": "count(*) FILTER (WHERE l.event = 'soft_bounce')",
    "invalid": "count(*) FILTER (WHERE l.event = 'invalid')",
    "spam": "count(*) FILTER (WHERE l.event = 'failed' AND l.status = 3)",
    "failed": "count(*) FILTER (WHERE l.event = 'failed')",
    "opens": "count(*) FILTER (WHERE l.event = 'open' AND l.machine IS NULL)",
    "unique_opens": "count(DISTINCT l.env_id) FILTER (WHERE l.event = 'open' "
    "AND l.machine IS NULL)",
    "clicks": "count(*) FILTER (WHERE l.event = 'click' AND l.machine IS NULL)",
    "unique_clicks": "count(DISTINCT l.env_id) FILTER (WHERE l.event = 'click' "
    "AND l.machine IS NULL)",
    "machine_opens": "count(*) FILTER (WHERE l.event = 'open' AND l.machine IS NOT NULL)",
    "machine_clicks": "count(*) FILTER (WHERE l.event = 'click' AND l.machine IS NOT NULL)",
    "spam_reports": "count(*) FILTER (WHERE l.event = 'spam_report')",
    "unsubscribes": "count(*) FILTER (WHERE l.event = 'unsubscribe')",
}
# The log is partitioned by event time: an event is looked for from a day before its
# message's range (clocks of services may differ a little), never before.
_RECOUNT_HOURLY = f"""
INSERT INTO events.stats_hourly ({_KEY}, {_COUNTER_LIST})
SELECT m.tenant_id, date_trunc('hour', m.recv_time, 'UTC'),
    lower(split_part(m.sender, '@', -1)), COALESCE(m.label, ''), COALESCE(m.api_user, ''),
    COALESCE(m.template_id, ''), COALESCE(m.task_id, ''),
    {", ".join(_FROM_LOG[c] for c in COUNTERS)}
FROM events.messages m JOIN events.event_log l ON l.env_id = m.env_id
WHERE m.tenant_id = $1 AND m.recv_time >= $2 AND m.recv_time < $3 AND m.requested > 0
    AND l.time >= $2::timestamptz - interval '1 day'
GROUP BY 1, 2, 3, 4, 5, 6, 7
"""  # noqa: S608 - constants
_RECOUNT_DAILY = f"""
INSERT INTO events.stats_daily ({_KEY}, {_COUNTER_LIST})
SELECT tenant_id, date_trunc('day', period, 'UTC'), domain, label, api_user, template_id,
    task_id, {", ".join(f"sum({c})" for c in COUNTERS)}
FROM events.stats_hourly WHERE tenant_id = $1 AND period >= $2 AND period < $3
GROUP BY 1, 2, 3, 4, 5, 6, 7
"""  # noqa: S608 - constants


def whole_days(since: datetime, until: datetime) -> tuple[datetime, datetime]:
    start, end = day_of(since), day_of(until)
    return start, end if end == until else end + timedelta(days=1)


async def recount(
    pool: asyncpg.Pool, tenant_id: str, since: datetime, until: datetime
) -> tuple[datetime, datetime]:
    """Rebuild an account's counters of the whole UTC days around [since, until) from the
    event log; the days rebuilt. Exact only for messages whose events are all still in
    the log (``POSTWIRE_EVENT_LOG_RETENTION``): older days would lose what was dropped.
    Recording waits while it runs (it holds ``stats_hourly`` exclusively), so no event is
    counted both by it and by a batch, or by neither."""
    start, end = whole_days(since, until)
    async with pool.acquire() as conn, conn.transaction():
        await conn.execute("LOCK TABLE events.stats_hourly IN EXCLUSIVE MODE")
        for table in ("stats_hourly", "stats_daily"):
            await conn.execute(
                f"DELETE FROM events.{table} "  # noqa: S608 - a constant
                "WHERE tenant_id = $1 AND period >= $2 AND period < $3",
                tenant_id,
                start,
                end,
            )
        await conn.execute(_RECOUNT_HOURLY, tenant_id, start, end)
        await conn.execute(_RECOUNT_DAILY, tenant_id, start, end)
    return start, end


@dataclass(frozen=True)
class StatsQuery:
    tenant_id: str
    granularity: Granularity
    since: datetime  # periods from the one holding since
    until: datetime  # to the one holding the instant before until
    domain: str | None = None
    label: str | None = None
    api_user: str | None = None
    template_id: str | None = None
    task_id: str | None = None


async def totals(pool: asyncpg.Pool, q: StatsQuery) -> list[tuple[datetime, dict[str, int]]]:
    """Each period's counters with data, in order: hours from hourly rows, days and
    months from daily rows."""
    table = "stats_hourly" if q.granularity is Granularity.HOUR else "stats_daily"
    where = ["tenant_id = $1", "period >= $2", "period < $3"]
    args: list[Any] = [q.tenant_id, q.since, q.until]
    for name in ("domain", "label", "api_user", "template_id", "task_id"):
        value = getattr(q, name)
        if value is not None:
            args.append(value.lower() if name == "domain" else value)
            where.append(f"{name} = ${len(args)}")
    period = "period"
    if q.granularity is Granularity.MONTH:
        period = "date_trunc('month', period, 'UTC')"
    rows = await pool.fetch(
        f"SELECT {period} AS period, "  # noqa: S608 - clauses are constants
        + ", ".join(f"sum({c})::bigint AS {c}" for c in COUNTERS)
        + f" FROM events.{table} WHERE "
        + " AND ".join(where)
        + " GROUP BY 1 ORDER BY 1",
        *args,
    )
    return [(r["period"], {c: r[c] for c in COUNTERS}) for r in rows]


async def recount_all(
    pool: asyncpg.Pool, since: datetime, until: datetime, tenant_id: str | None = None
) -> dict[str, Any]:
    """:func:`recount` for one account, or for each with mail accepted in the range, a
    day at a time."""
    tenants = (
        [tenant_id]
        if tenant_id
        else [
            r["tenant_id"]
            for r in await pool.fetch(
                "SELECT DISTINCT tenant_id FROM events.messages "
                "WHERE recv_time >= $1 AND recv_time < $2",
                *whole_days(since, until),
            )
        ]
    )
    start, end = whole_days(since, until)
    for tenant in tenants:
        day = start
        while day < end:  # a day at a time: recording waits for one day's recount only
            await recount(pool, tenant, day, day + timedelta(days=1))
            day += timedelta(days=1)
    return {"accounts": len(tenants), "from": start.isoformat(), "until": end.isoformat()}
