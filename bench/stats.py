"""Statistics at scale: counters against scanning the event log, in one run.

    .venv/bin/python bench/stats.py                  # 14 days x 1,000,000 messages (~35M events)
    .venv/bin/python bench/stats.py --quick          # 2 days x 100,000 messages

In a throwaway database (created, migrated and dropped), it measures:

1. the hot path: ``record_many`` events/s with the counters kept and with them left out
   (``stats_store.add`` replaced by nothing), rounds alternated, medians and their ratio;
2. the load: ``--days`` of mail at ``--per-day`` messages a day, ending yesterday, COPYed
   into ``events.messages`` and ``events.event_log`` (its daily partitions made first);
   per message a request and a result (3 % invalid, 4 % failed with status 2/3/4, the
   rest delivered, 3 % after a soft bounce), human opens on 25 % of the delivered (30 %
   of those twice), a proxy's open on 10 %, a click on 5 %: ~2.5 events a message;
3. the recount (``stats_store.recount`` for every account) that builds the counters, then
   the counters of those days copied back over the year before them (the log keeps 30
   days, so a year of counters can only be kept, never recounted: this is the year of
   counters a deployment at that rate accumulates);
4. p50/p99 of ``stats_store.totals`` (what the HTTP routes run) for the biggest account
   (half the mail): hours over a month, days over a year, months over a year, each
   without and with a filter (label);
5. the in-run reference: the same figures computed from the event log joined with the
   messages (what answering without counters would take), over what the log holds, and
   the ratio reference / counters.

Accounts: 20, one with half the mail; each sends from 2 domains and through 8
"campaigns" (a label, template, task and API user that go together), so an account-hour
has at most 16 counter rows.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import statistics
import time
from collections.abc import Awaitable, Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg

from postwire_common import partitions
from postwire_common.schemas import DeliveryStatus, EventType, MailEvent
from postwire_events import stats_store
from postwire_events.stats import COUNTERS, Granularity
from postwire_events.stats_store import StatsQuery
from postwire_events.store import EventsStore
from postwire_testkit.infra import migrated_database

TENANTS = 20
CHUNK = 100_000  # messages per COPY
MESSAGE_COLUMNS = (
    "env_id", "tenant_id", "msg_id", "sender", "rcpt", "subject", "label", "status",
    "status_rank", "status_time", "status_code", "recv_time", "method", "template_id",
    "task_id", "api_user", "requested", "first_open", "first_click",
)  # fmt: skip
EVENT_COLUMNS = ("event_id", "env_id", "tenant_id", "event", "time", "status", "err_code",
                 "url", "attempt", "ip", "user_agent", "machine")  # fmt: skip


def campaigns(tenant: str) -> list[tuple[str, str, str | None, str | None, str]]:
    """(domain, label, template, task, api_user) an account sends with."""
    return [
        (f"{tenant}-{c % 2}.example", f"label{c}", f"tpl{c}" if c % 2 else None,
         f"task{c}" if c % 4 == 0 else None, f"{tenant}.u{c % 2}")
        for c in range(8)
    ]  # fmt: skip


def tenant_of(rng: random.Random) -> int:
    return 0 if rng.random() < 0.5 else rng.randrange(1, TENANTS)


def mail(
    rng: random.Random, env_id: str, t: datetime
) -> tuple[tuple[Any, ...], list[tuple[Any, ...]]]:
    """One message's row and its events."""
    tenant = f"acct{tenant_of(rng)}"
    domain, label, template, task, api_user = rng.choice(campaigns(tenant))
    rcpt = f"r{rng.randrange(2_000_000)}@example.org"
    events: list[tuple[Any, ...]] = []

    def add(kind: str, seconds: float, status: int | None = None, **extra: Any) -> str:
        event_id = f"{env_id}:{kind}:{len(events)}"
        events.append(
            (event_id, env_id, tenant, kind, t + timedelta(seconds=seconds), status,
             extra.get("code"), extra.get("url"), 1 if status is not None else 0,
             extra.get("ip"), extra.get("ua"), extra.get("machine"))
        )  # fmt: skip
        return event_id

    add("request", 0)
    r = rng.random()
    first_open = first_click = None
    if r < 0.03:
        add("invalid", 0.001, 2)
        status, rank, code = "suppressed", 2, 2
    elif r < 0.07:
        code = rng.choice((2, 3, 4))
        add("failed", 2, code, code=550)
        status, rank = "failed", 3
    else:
        if r < 0.10:
            add("soft_bounce", 1, None, code=451)
        add("delivered", 2, 0, code=250)
        status, rank, code = "delivered", 2, 0
        if rng.random() < 0.25:
            first_open = add("open", 600, ip="198.51.100.7", ua="Mozilla/5.0")
            if rng.random() < 0.3:
                add("open", 7200, ip="198.51.100.7", ua="Mozilla/5.0")
        if rng.random() < 0.10:
            add("open", 60, ip="203.0.113.9", ua="GoogleImageProxy", machine="privacy_proxy")
        if rng.random() < 0.05:
            first_click = add("click", 900, url="https://shop.example/a", ip="198.51.100.7")
    row = (
        env_id, tenant, f"<{env_id}@{domain}>", f"news@{domain}", rcpt, "Your order", label,
        status, rank, events[-1][4], code, t, "api", template, task, api_user, 1, first_open,
        first_click,
    )  # fmt: skip
    return row, events


def chunks(days: int, per_day: int, first: datetime) -> Iterator[tuple[list[Any], list[Any]]]:
    rng = random.Random(42)
    rows: list[Any] = []
    events: list[Any] = []
    for d in range(days):
        for i in range(per_day):
            t = first + timedelta(days=d, seconds=86400 * i / per_day)
            row, evs = mail(rng, f"B{d:03d}{i:08d}", t)
            rows.append(row)
            events += evs
            if len(rows) == CHUNK:
                yield rows, events
                rows, events = [], []
    if rows:
        yield rows, events


async def load(pool: asyncpg.Pool, days: int, per_day: int, first: datetime) -> int:
    async with pool.acquire() as conn:
        for d in range(-1, days + 1):
            await partitions.ensure(conn, "events.event_log", (first + timedelta(days=d)).date())
        n = 0
        for rows, events in chunks(days, per_day, first):
            await conn.copy_records_to_table(
                "messages", schema_name="events", records=rows, columns=MESSAGE_COLUMNS
            )
            await conn.copy_records_to_table(
                "event_log", schema_name="events", records=events, columns=EVENT_COLUMNS
            )
            n += len(events)
        await conn.execute("ANALYZE events.messages")
        await conn.execute("ANALYZE events.event_log")
    return n


async def extend_to_a_year(pool: asyncpg.Pool, days: int, first: datetime) -> None:
    """Copy the recounted days back over the year before them."""
    columns = "tenant_id, period, domain, label, api_user, template_id, task_id, " + ", ".join(
        COUNTERS
    )
    shifted = columns.replace("period", "period - make_interval(days => $1)")
    for table in ("stats_hourly", "stats_daily"):
        for k in range(1, 365 // days + 1):
            await pool.execute(
                f"INSERT INTO events.{table} ({columns}) "  # noqa: S608 - constants
                f"SELECT {shifted} FROM events.{table} WHERE period >= $2",
                k * days,
                first,
            )
        await pool.execute(f"ANALYZE events.{table}")


# The figures without counters: the recount's aggregation, read instead of stored.
_FROM_LOG = (
    "SELECT date_trunc($4, m.recv_time, 'UTC') AS period, "  # noqa: S608 - constants
    + ", ".join(f"{stats_store._FROM_LOG[c]} AS {c}" for c in COUNTERS)
    + " FROM events.messages m JOIN events.event_log l ON l.env_id = m.env_id "
    "WHERE m.tenant_id = $1 AND m.recv_time >= $2 AND m.recv_time < $3 AND m.requested > 0 "
    "AND l.time >= $2::timestamptz - interval '1 day' LABEL_CLAUSE GROUP BY 1 ORDER BY 1"
)


async def timed(fn: Callable[[], Awaitable[Any]], runs: int) -> list[float]:
    took = []
    for _ in range(runs):
        start = time.perf_counter()
        await fn()
        took.append((time.perf_counter() - start) * 1000)
    return took


def p(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


async def queries(pool: asyncpg.Pool, runs: int, ref_runs: int) -> None:
    now = datetime.now(UTC)
    cases = [
        ("hour over a month", Granularity.HOUR, timedelta(days=30)),
        ("day over a year", Granularity.DAY, timedelta(days=365)),
        ("month over a year", Granularity.MONTH, timedelta(days=365)),
    ]
    print(f"\n{'query (acct0, half the mail)':<36}{'rows':>6}{'p50 ms':>10}{'p99 ms':>10}"
          f"{'log scan ms':>13}{'ratio':>9}")  # fmt: skip
    for name, granularity, span in cases:
        for label in (None, "label3"):
            q = StatsQuery("acct0", granularity, now - span, now, label=label)
            rows = await stats_store.totals(pool, q)

            async def counters(q: StatsQuery = q) -> Any:
                return await stats_store.totals(pool, q)

            took = await timed(counters, runs)
            sql = _FROM_LOG.replace("LABEL_CLAUSE", "AND m.label = $5" if label else "")
            args: list[Any] = ["acct0", now - span, now, granularity.value]
            if label:
                args.append(label)

            async def scan(sql: str = sql, args: list[Any] = args) -> Any:
                return await pool.fetch(sql, *args)

            ref = await timed(scan, ref_runs)
            shown = name + (" + label" if label else "")
            ratio = statistics.median(ref) / p(took, 0.5)
            print(f"{shown:<36}{len(rows):>6}{p(took, 0.5):>10.2f}{p(took, 0.99):>10.2f}"
                  f"{statistics.median(ref):>13.0f}{ratio:>9.0f}")  # fmt: skip


def hot_events(tag: str, n: int, kind: EventType) -> list[MailEvent]:
    now = datetime.now(UTC)
    return [
        MailEvent(
            event_id=f"{tag}{i}:{kind.value}", event=kind, env_id=f"{tag}{i}",
            msg_id=f"<{tag}{i}@x>", tenant_id=f"acct{i % 5}", account="news@shop.example",
            sender="news@shop.example", rcpt=f"r{i}@example.org", label=f"label{i % 3}",
            api_user="acct.u0", status=DeliveryStatus.DELIVERED
            if kind is EventType.DELIVERED else None,
            recv_time=now, time=now,
        )
        for i in range(n)
    ]  # fmt: skip


async def hot_path(pool: asyncpg.Pool, rounds: int, messages: int, size: int) -> None:
    """record_many as the events service calls it: 8 concurrent group commits of
    ``size`` events (64 batches of one event each at most, in the service), request then
    delivered then open for each message, from 5 accounts."""
    store = EventsStore(pool)
    keep = stats_store.add

    async def nothing(conn: asyncpg.Connection, found: stats_store.Found) -> None:
        return None

    rates: dict[str, list[float]] = {"with counters": [], "without counters": []}
    for r in range(rounds):
        for mode in rates:
            stats_store.add = keep if mode == "with counters" else nothing
            tag = f"H{r}{mode[:2]}_"
            batches = [
                hot_events(f"{tag}{k}_", size, kind)
                for kind in (EventType.REQUEST, EventType.DELIVERED, EventType.OPEN)
                for k in range(messages // size)
            ]
            start = time.perf_counter()
            for g in range(0, len(batches), 8):
                await asyncio.gather(*(store.record_many(b) for b in batches[g : g + 8]))
            rates[mode].append(len(batches) * size / (time.perf_counter() - start))
    stats_store.add = keep
    with_, without = (statistics.median(v) for v in rates.values())
    ratio = with_ / without
    print(f"record_many, {size} events a call, events/s (median of {rounds}): with "
          f"counters {with_:,.0f}, without {without:,.0f}, ratio {ratio:.2f}")  # fmt: skip


async def main(args: argparse.Namespace) -> None:
    async with migrated_database() as url:
        # No command timeout: the log scans take minutes.
        pool = await asyncpg.create_pool(url, min_size=1, max_size=8, command_timeout=None)
        try:
            for size in (64, 512):
                await hot_path(pool, args.rounds, args.hot_messages, size)
            if args.hot_only:
                return
            await pool.execute(
                "TRUNCATE events.stats_hourly, events.stats_daily, events.messages, "
                "events.event_log"
            )
            today = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
            first = today - timedelta(days=args.days)
            start = time.perf_counter()
            n = await load(pool, args.days, args.per_day, first)
            took = time.perf_counter() - start
            print(f"loaded {args.days * args.per_day:,} messages, {n:,} events "
                  f"in {took:.0f} s ({n / took:,.0f} events/s)")  # fmt: skip
            start = time.perf_counter()
            await stats_store.recount_all(pool, first, today)
            took = time.perf_counter() - start
            print(f"recount of {args.days} days: {took:.0f} s ({n / took:,.0f} events/s)")
            await extend_to_a_year(pool, args.days, first)
            hourly = await pool.fetchval("SELECT count(*) FROM events.stats_hourly")
            daily = await pool.fetchval("SELECT count(*) FROM events.stats_daily")
            print(f"counter rows for a year: {hourly:,} hourly, {daily:,} daily")
            await queries(pool, args.runs, args.ref_runs)
        finally:
            await pool.close()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--days", type=int, default=14)
    parser.add_argument("--per-day", type=int, default=1_000_000)
    parser.add_argument("--runs", type=int, default=50, help="of each counters query")
    parser.add_argument("--ref-runs", type=int, default=1, help="of each log scan")
    parser.add_argument("--rounds", type=int, default=3, help="of the hot path A/B")
    parser.add_argument("--hot-messages", type=int, default=10240)
    parser.add_argument("--hot-only", action="store_true")
    parser.add_argument("--quick", action="store_true", help="2 days x 100,000 messages")
    args = parser.parse_args()
    if args.quick:
        args.days, args.per_day, args.runs, args.ref_runs = 2, 100_000, 20, 1
    asyncio.run(main(args))
