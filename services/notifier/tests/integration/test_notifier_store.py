"""notifier's push table against the real PostgreSQL: one push (one retry chain) per
webhook and event, however often the event is announced; failed attempts make the push
due again later; claims are per webhook lane."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import asyncpg
import pytest

from postwire_common import db
from postwire_common.crypto import Keyring, generate_key
from postwire_notifier.http_client import Answer
from postwire_notifier.store import NotifierStore, Webhook
from postwire_testkit.infra import migrated_database, unique_name

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
async def pool() -> AsyncIterator[asyncpg.Pool]:
    async with migrated_database() as url:
        made = await db.create_pool(url)
        yield made
        await made.close()


NOW = datetime.now(UTC)
KEYRING = Keyring([generate_key()])


async def webhook(store: NotifierStore) -> Webhook:
    hook = Webhook(unique_name("W"), unique_name("t"), "http://127.0.0.1:9/h", ["delivered"], "k")
    await store.insert_webhook(hook, 10)
    return hook


async def test_an_event_announced_twice_is_one_push(pool: asyncpg.Pool) -> None:
    store = NotifierStore(pool, KEYRING)
    hook = await webhook(store)
    event_id = unique_name("E")
    assert await store.create_pushes([(hook.id, event_id, NOW, "tok1", {"n": 1})]) == 1
    assert await store.create_pushes([(hook.id, event_id, NOW, "tok2", {"n": 1})]) == 0
    claimed = await store.claim("n1", 100, [], 30.0)
    mine = [p for p in claimed if p.webhook_id == hook.id]
    assert [(p.token, p.attempts) for p in mine] == [("tok1", 0)]
    assert [p for p in await store.claim("n2", 100, [], 30.0) if p.webhook_id == hook.id] == []


async def test_a_failed_attempt_is_due_again_later_and_the_last_one_drops(
    pool: asyncpg.Pool,
) -> None:
    store = NotifierStore(pool, KEYRING)
    hook = await webhook(store)
    await store.create_pushes([(hook.id, unique_name("E"), NOW, "tok", {})])
    [push] = [p for p in await store.claim("n1", 100, [], 30.0) if p.webhook_id == hook.id]
    await store.record_attempt(push, 1, Answer(500, 3), retry_in=60.0)
    row = await pool.fetchrow(
        "SELECT state, attempts, due_at > now() AS later, lease_owner FROM notifier.pushes "
        "WHERE id = $1",
        push.id,
    )
    assert dict(row) == {"state": "pending", "attempts": 1, "later": True, "lease_owner": None}
    await store.record_attempt(push, 2, Answer(500, 3), retry_in=None)
    assert (
        await pool.fetchval("SELECT state FROM notifier.pushes WHERE id = $1", push.id) == "dropped"
    )
    # A duplicate record of an earlier attempt changes nothing.
    await store.record_attempt(push, 1, Answer(200, 3), retry_in=None)
    assert (
        await pool.fetchval("SELECT state FROM notifier.pushes WHERE id = $1", push.id) == "dropped"
    )


async def test_claims_leave_out_full_webhook_lanes(pool: asyncpg.Pool) -> None:
    store = NotifierStore(pool, KEYRING)
    busy, free = await webhook(store), await webhook(store)
    await store.create_pushes(
        [(busy.id, unique_name("E"), NOW, "t", {}), (free.id, unique_name("E"), NOW, "t", {})]
    )
    lanes = {p.webhook_id for p in await store.claim("n1", 100, [busy.id], 30.0)}
    assert free.id in lanes
    assert busy.id not in lanes


async def test_pushes_live_in_their_events_day_and_old_finished_days_are_dropped(
    pool: asyncpg.Pool,
) -> None:
    """Retention drops whole days of pushes, but never a day with a push still pending."""
    from postwire_common.partitions import ensure, purge

    store = NotifierStore(pool, KEYRING)
    hook = await webhook(store)
    old = NOW - timedelta(days=40)
    async with pool.acquire() as conn:
        await ensure(conn, "notifier.pushes", old.date())
    done, pending = unique_name("E"), unique_name("E")
    await store.create_pushes([(hook.id, done, old, "t", {}), (hook.id, pending, NOW, "t", {})])
    day = f"notifier.pushes_p{old:%Y%m%d}"
    async with pool.acquire() as conn:
        assert await conn.fetchval(f"SELECT count(*) FROM {day} WHERE event_id = $1", done) == 1
        await conn.execute(f"UPDATE {day} SET state = 'pending'")  # not finished yet: kept
        assert day not in await purge(conn, "notifier.pushes", 30 * 86400, live="state = 'pending'")
        await conn.execute(f"UPDATE {day} SET state = 'delivered'")
        assert day in await purge(conn, "notifier.pushes", 30 * 86400, live="state = 'pending'")
    rows = await pool.fetch("SELECT event_id FROM notifier.pushes WHERE webhook_id = $1", hook.id)
    assert [r["event_id"] for r in rows] == [pending]
