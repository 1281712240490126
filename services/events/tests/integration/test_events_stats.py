"""Statistics on the real PostgreSQL: counters kept by record_many equal a recount from
the event log whatever is repeated, reordered or recorded concurrently; unique opens once
per message, machine opens apart; the HTTP answers (periods, filters, rates, CSV, the
year limit, one account only) and the event lists."""

from __future__ import annotations

import asyncio
import csv
import io
import random
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import httpx
import pytest
from fastapi import FastAPI, Request, Response

from postwire_common import db
from postwire_common.http.envelope import install_error_handlers
from postwire_common.identity import Principal
from postwire_common.schemas import DeliveryStatus, EventType, MailEvent
from postwire_events import api, events_api, stats_api, stats_store
from postwire_events.stats import COUNTERS
from postwire_events.store import EventsStore
from postwire_testkit.infra import migrated_database, unique_name

pytestmark = pytest.mark.integration
T0 = datetime(2026, 3, 30, 22, 0, tzinfo=UTC)  # two hours before a new day and month
STATUS = {
    EventType.DELIVERED: DeliveryStatus.DELIVERED,
    EventType.INVALID: DeliveryStatus.INVALID_ADDRESS,
}


@pytest.fixture(scope="module")
async def pool() -> AsyncIterator[asyncpg.Pool]:
    async with migrated_database() as url:
        made = await db.create_pool(url)
        yield made
        await made.close()


class Mail:
    """One recipient message and the events its life makes."""

    def __init__(self, tenant: str, hours: float = 0, **request: Any) -> None:
        self.tenant, self.env_id = tenant, unique_name("E")
        self.recv_time = T0 + timedelta(hours=hours)
        self.request = request
        self.n = 0

    def event(self, kind: EventType, **extra: Any) -> MailEvent:
        self.n += 1
        fields: dict[str, Any] = {"status": STATUS.get(kind)}
        if kind is EventType.REQUEST:
            fields.update(self.request)
        fields.update(extra)
        return MailEvent(
            event_id=f"{self.env_id}:{kind.value}:{self.n}", event=kind, env_id=self.env_id,
            msg_id=f"<{self.env_id}@x>", tenant_id=self.tenant, account="news@Shop.Example",
            sender="news@Shop.Example", rcpt="Ann@example.org", label="news",
            recv_time=self.recv_time, time=self.recv_time + timedelta(seconds=self.n), **fields,
        )  # fmt: skip


def life(tenant: str, i: int) -> list[MailEvent]:
    """A varied stream: every kind of result, repeated opens, machine hits."""
    m = Mail(tenant, hours=i % 5, api_user=f"{tenant}.u{i % 2}", template_id=f"tpl{i % 3}")
    events = [m.event(EventType.REQUEST)]
    kind = i % 6
    if kind == 0:
        events.append(m.event(EventType.INVALID))
        return events
    events.append(m.event(EventType.SOFT_BOUNCE))
    if kind == 1:
        events.append(m.event(EventType.FAILED, status=DeliveryStatus.SPAM))
        return events
    if kind == 2:
        events.append(m.event(EventType.FAILED, status=DeliveryStatus.FAILED))
        return events
    events.append(m.event(EventType.DELIVERED))
    events.append(m.event(EventType.OPEN, machine="privacy_proxy"))
    if kind >= 4:
        events += [m.event(EventType.OPEN, ip="198.51.100.7"), m.event(EventType.OPEN)]
        events.append(m.event(EventType.CLICK, machine="scanner", url="https://x/"))
        events.append(m.event(EventType.CLICK, url="https://x/a"))
    if kind == 5:
        events += [m.event(EventType.UNSUBSCRIBE), m.event(EventType.SPAM_REPORT)]
        events.append(m.event(EventType.FAILED, status=DeliveryStatus.INVALID_ADDRESS))
    return events


async def counters(pool: asyncpg.Pool, tenant: str, table: str) -> dict[tuple[Any, ...], Any]:
    """Each key's counters, its shards summed."""
    keys = "period, domain, label, api_user, template_id, task_id"
    rows = await pool.fetch(
        f"SELECT {keys}, "
        + ", ".join(f"sum({c})::int AS {c}" for c in COUNTERS)
        + f" FROM events.{table} WHERE tenant_id = $1 GROUP BY {keys}",
        tenant,
    )
    return {
        tuple(r[k] for k in keys.split(", ")): tuple(r[c] for c in COUNTERS)
        for r in rows
        if any(r[c] for c in COUNTERS)
    }


async def totals(pool: asyncpg.Pool, tenant: str) -> dict[str, int]:
    row = await pool.fetchrow(
        "SELECT "
        + ", ".join(f"sum({c})::int AS {c}" for c in COUNTERS)
        + " FROM events.stats_daily WHERE tenant_id = $1",
        tenant,
    )
    return {c: row[c] or 0 for c in COUNTERS}


async def test_counters_equal_the_recount_after_replays_and_duplicates(
    pool: asyncpg.Pool,
) -> None:
    store = EventsStore(pool)
    tenant = unique_name("t")
    stream = [e for i in range(60) for e in life(tenant, i)]
    rng = random.Random(7)
    shuffled = stream[:]
    rng.shuffle(shuffled)  # results before their requests, opens before delivery
    batches = [shuffled[i : i + 17] for i in range(0, len(shuffled), 17)]
    await asyncio.gather(*(store.record_many(b) for b in batches))
    live = {t: await counters(pool, tenant, t) for t in ("stats_hourly", "stats_daily")}
    # Replayed whole, then again with duplicates within batches, concurrently.
    await store.record_many(stream)
    dup = [e for e in stream for _ in range(2)]
    await asyncio.gather(*(store.record_many(dup[i : i + 31]) for i in range(0, len(dup), 31)))
    for table, before in live.items():
        assert await counters(pool, tenant, table) == before
    await stats_store.recount(pool, tenant, T0 - timedelta(days=1), T0 + timedelta(days=2))
    for table, before in live.items():
        assert await counters(pool, tenant, table) == before, table

    got = await totals(pool, tenant)
    # 60 messages, i % 6: 0 invalid, 1 spam, 2 failed, 3 delivered, 4 opened, 5 all of it.
    assert got["requests"] == 60
    assert got["invalid"] == 10
    assert got["soft_bounces"] == 50
    assert (got["failed"], got["spam"]) == (30, 10)  # 1, 2 and the bounce after delivery
    assert got["delivered"] == 30
    assert (got["opens"], got["unique_opens"], got["machine_opens"]) == (40, 20, 30)
    assert (got["clicks"], got["unique_clicks"], got["machine_clicks"]) == (20, 20, 20)
    assert (got["unsubscribes"], got["spam_reports"]) == (10, 10)
    hourly = await counters(pool, tenant, "stats_hourly")
    assert {k[1] for k in hourly} == {"shop.example"}  # the sender's domain, lower-cased
    assert {k[0].hour for k in hourly} == {22, 23, 0, 1, 2}  # by recv_time


async def test_events_before_their_request_wait_for_it(pool: asyncpg.Pool) -> None:
    store = EventsStore(pool)
    tenant = unique_name("t")
    m = Mail(tenant, api_user="a.u", task_id="task1")
    request, delivered, opened = (
        m.event(EventType.REQUEST), m.event(EventType.DELIVERED), m.event(EventType.OPEN)
    )  # fmt: skip
    await store.record_many([opened])
    await store.record_many([delivered])
    assert (await totals(pool, tenant))["delivered"] == 0  # not counted without a request
    await store.record_many([request, opened])
    got = await totals(pool, tenant)
    assert (got["requests"], got["delivered"], got["opens"], got["unique_opens"]) == (1, 1, 1, 1)
    row = await pool.fetchrow(
        "SELECT api_user, task_id FROM events.stats_daily WHERE tenant_id = $1", tenant
    )
    assert (row["api_user"], row["task_id"]) == ("a.u", "task1")


async def test_unique_opens_count_once_and_machine_opens_apart(pool: asyncpg.Pool) -> None:
    store = EventsStore(pool)
    tenant = unique_name("t")
    m = Mail(tenant)
    await store.record_many([m.event(EventType.REQUEST), m.event(EventType.DELIVERED)])
    await store.record_many([m.event(EventType.OPEN, machine="privacy_proxy")])
    got = await totals(pool, tenant)
    assert (got["opens"], got["unique_opens"], got["machine_opens"]) == (0, 0, 1)
    await asyncio.gather(*(store.record_many([m.event(EventType.OPEN)]) for _ in range(5)))
    await store.record_many([m.event(EventType.OPEN), m.event(EventType.OPEN)])
    got = await totals(pool, tenant)
    assert (got["opens"], got["unique_opens"], got["machine_opens"]) == (7, 1, 1)


# HTTP


def app_for(pool: asyncpg.Pool, tenant: str) -> FastAPI:
    app = FastAPI()
    install_error_handlers(app)
    store = EventsStore(pool)
    for r in (stats_api.router(pool), events_api.router(store), api.router(store)):
        app.include_router(r)

    @app.middleware("http")
    async def caller(
        request: Request, call_next: Callable[[Request], Awaitable[Response]]
    ) -> Response:
        who = request.headers.get("x-tenant", tenant)
        request.state.principal = Principal(who, who, f"{who}.u0", "trigger")
        return await call_next(request)

    return app


@pytest.fixture(scope="module")
async def sent(pool: asyncpg.Pool) -> AsyncIterator[tuple[str, httpx.AsyncClient]]:
    tenant = unique_name("t")
    store = EventsStore(pool)
    await store.record_many([e for i in range(60) for e in life(tenant, i)])
    other = unique_name("t")  # another account's mail, never shown
    await store.record_many([e for i in range(12) for e in life(other, i)])
    transport = httpx.ASGITransport(app=app_for(pool, tenant))
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
        yield tenant, client


RANGE = {"since": "2026-03-30T00:00:00Z", "until": "2026-04-01T00:00:00Z"}


async def rows(client: httpx.AsyncClient, path: str, **params: str) -> list[dict[str, Any]]:
    response = await client.get(path, params={**RANGE, **params})
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["Code"] == "ok"
    return body["Result"]["rows"]


async def test_sending_by_hour_day_and_month(sent: tuple[str, httpx.AsyncClient]) -> None:
    _, client = sent
    hours = await rows(client, "/v1/stats/sending", granularity="hour")
    assert [r["period"] for r in hours] == [
        "2026-03-30T22:00:00Z", "2026-03-30T23:00:00Z", "2026-03-31T00:00:00Z",
        "2026-03-31T01:00:00Z", "2026-03-31T02:00:00Z",
    ]  # fmt: skip
    assert sum(r["requests"] for r in hours) == 60
    days = await rows(client, "/v1/stats/sending", granularity="day")
    assert [(r["period"], r["requests"]) for r in days] == [
        ("2026-03-30T00:00:00Z", 24), ("2026-03-31T00:00:00Z", 36),
    ]  # fmt: skip
    months = await rows(client, "/v1/stats/sending", granularity="month")
    assert [r["period"] for r in months] == ["2026-03-01T00:00:00Z"]
    month = months[0]
    assert (month["requests"], month["delivered"], month["invalid"]) == (60, 30, 10)
    assert (month["failed"], month["spam"], month["soft_bounces"]) == (30, 10, 50)
    assert month["success_rate"] == 0.5
    assert month["invalid_rate"] == 0.1667
    report = (await rows(client, "/v1/stats/reports", granularity="month"))[0]
    assert report == {
        "period": "2026-03-01T00:00:00Z", "sent": 60, "successful": 30, "failed": 30,
        "to_send": 0, "rejected": 10, "delivery_rate": 0.5,
    }  # fmt: skip
    tracking = (await rows(client, "/v1/stats/tracking", granularity="month"))[0]
    assert tracking == {
        "period": "2026-03-01T00:00:00Z", "delivered": 30, "opens": 40, "unique_opens": 20,
        "clicks": 20, "unique_clicks": 20, "spam_reports": 10, "unsubscribes": 10,
        "machine_opens": 30, "machine_clicks": 20,
    }  # fmt: skip


async def test_filters_and_isolation(sent: tuple[str, httpx.AsyncClient]) -> None:
    tenant, client = sent
    by = {
        "api_user": (f"{tenant}.u1", 30),
        "template_id": ("tpl0", 20),
        "domain": ("SHOP.example", 60),
        "label": ("news", 60),
    }
    for name, (value, requests) in by.items():
        got = await rows(client, "/v1/stats/sending", granularity="month", **{name: value})
        assert got[0]["requests"] == requests, name
    assert await rows(client, "/v1/stats/sending", label="other") == []
    assert await rows(client, "/v1/stats/sending", task_id="nope") == []
    # Another account sees only its own (12 messages), never these.
    response = await client.get(
        "/v1/stats/sending", params={**RANGE, "granularity": "month"}, headers={"x-tenant": "x"}
    )
    assert response.json()["Result"]["rows"] == []


async def test_csv_and_the_range_limit(sent: tuple[str, httpx.AsyncClient]) -> None:
    _, client = sent
    response = await client.get(
        "/v1/stats/sending", params={**RANGE, "granularity": "day", "format": "csv"}
    )
    assert response.headers["content-type"].startswith("text/csv")
    table = list(csv.DictReader(io.StringIO(response.text)))
    assert [(r["period"], r["requests"], r["success_rate"]) for r in table] == [
        ("2026-03-30T00:00:00Z", "24", "0.5"), ("2026-03-31T00:00:00Z", "36", "0.5"),
    ]  # fmt: skip
    assert sum(int(r["requests"]) for r in table) == 60
    for since, until in (("2025-01-01T00:00:00Z", "2026-03-01T00:00:00Z"),
                         ("2026-03-02T00:00:00Z", "2026-03-01T00:00:00Z")):  # fmt: skip
        response = await client.get("/v1/stats/sending", params={"since": since, "until": until})
        assert (response.status_code, response.json()["Code"]) == (400, "invalid_value")


async def test_messages_csv_streams_every_page_safely(
    pool: asyncpg.Pool, sent: tuple[str, httpx.AsyncClient]
) -> None:
    tenant, client = sent
    m = Mail(tenant, api_user="=cmd|' /C calc'!A0")
    await EventsStore(pool).record_many([m.event(EventType.REQUEST, subject='+1, "quoted"\nline')])
    response = await client.get("/v1/messages", params={**RANGE, "format": "csv", "limit": 5})
    table = list(csv.DictReader(io.StringIO(response.text)))
    assert len(table) == 61  # not one page: every message of the range
    mine = next(r for r in table if r["env_id"] == m.env_id)
    assert mine["api_user"] == "'=cmd|' /C calc'!A0"
    assert mine["subject"] == '\'+1, "quoted"\nline'
    listed = await client.get("/v1/messages", params={"api_user": "=cmd|' /C calc'!A0"})
    found = listed.json()["Result"]["messages"]
    assert [(r["env_id"], r["api_user"]) for r in found] == [(m.env_id, "=cmd|' /C calc'!A0")]


async def test_event_lists(sent: tuple[str, httpx.AsyncClient]) -> None:
    _, client = sent
    params = {**RANGE, "until": "2026-04-02T00:00:00Z"}
    response = await client.get("/v1/events", params={**params, "event": "open", "limit": 15})
    page = response.json()["Result"]
    assert len(page["events"]) == 15
    assert page["next_cursor"]
    more = await client.get(
        "/v1/events",
        params={**params, "event": "open", "limit": 500, "cursor": page["next_cursor"]},
    )
    opens = page["events"] + more.json()["Result"]["events"]
    assert len(opens) == 70  # 40 by recipients, 30 by a proxy
    assert len({(o["env_id"], o["time"]) for o in opens}) == 70
    assert sum(o["machine"] == "privacy_proxy" for o in opens) == 30
    assert {o["ip"] for o in opens} == {None, "198.51.100.7"}
    assert all(o["rcpt"] == "Ann@example.org" and o["type"] == "Track:Open" for o in opens)
    times = [o["time"] for o in opens]
    assert times == sorted(times, reverse=True)
    several = await client.get(
        "/v1/events", params={**params, "event": "unsubscribe,spam_report", "limit": 500}
    )
    assert len(several.json()["Result"]["events"]) == 20
    everything = await client.get("/v1/events", params={**params, "limit": 300})
    assert len(everything.json()["Result"]["events"]) == 300  # of 310
    by_rcpt = {**params, "event": "open", "rcpt": "ANN@example.org", "limit": 40}
    first = (await client.get("/v1/events", params=by_rcpt)).json()["Result"]
    rest = await client.get("/v1/events", params={**by_rcpt, "cursor": first["next_cursor"]})
    assert first["events"] + rest.json()["Result"]["events"] == opens
    other = await client.get("/v1/events", params=params, headers={"x-tenant": "x"})
    assert other.json()["Result"]["events"] == []
    wrong = await client.get("/v1/events", params={"event": "opened"})
    assert wrong.json()["Code"] == "invalid_value"
