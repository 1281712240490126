"""The events service's subscriber on an in-memory broker, its store on the real
PostgreSQL: a redelivered batch changes nothing twice, and arrival order does not matter
(each message ends with exactly one terminal status)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import asyncpg
import pytest
from faststream.rabbit import TestRabbitBroker

from postwire_common import db
from postwire_common.broker import topology
from postwire_common.broker.factory import make_broker
from postwire_common.config import Settings
from postwire_common.schemas import DeliveryStatus, EventBatch, EventType, MailEvent
from postwire_events import handlers
from postwire_events.store import EventsStore
from postwire_testkit.infra import migrated_database, unique_name

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
async def pool() -> AsyncIterator[asyncpg.Pool]:
    async with migrated_database() as url:
        made = await db.create_pool(url)
        yield made
        await made.close()


def event(env_id: str, kind: EventType, at: datetime, attempt: int = 0) -> MailEvent:
    status = {
        EventType.DELIVERED: DeliveryStatus.DELIVERED,
        EventType.FAILED: DeliveryStatus.FAILED,
    }
    return MailEvent(
        event_id=f"{env_id}:{attempt}:{kind.value}",
        event=kind,
        env_id=env_id,
        msg_id=f"<{env_id}@x>",
        tenant_id="t",
        account="s@x",
        sender="s@x",
        rcpt="r@y",
        subject="Hi" if kind is EventType.REQUEST else None,
        status=status.get(kind),
        attempt=attempt,
        recv_time=at,
        time=at,
    )


async def publish(pool: asyncpg.Pool, *batches: EventBatch) -> None:
    broker = make_broker(Settings(), service="events-test")
    handlers.register(broker, EventsStore(pool), concurrency=8)
    async with TestRabbitBroker(broker) as test:
        for batch in batches:
            await test.publish(batch, exchange=topology.EVENTS, routing_key="test")


async def test_a_redelivered_batch_is_recorded_once(pool: asyncpg.Pool) -> None:
    env_id = unique_name("E")
    now = datetime.now(UTC)
    batch = EventBatch(events=[event(env_id, EventType.REQUEST, now)])
    await publish(pool, batch, batch)
    assert (
        await pool.fetchval("SELECT count(*) FROM events.event_log WHERE env_id = $1", env_id) == 1
    )


async def test_a_late_soft_bounce_never_undoes_the_terminal_status(pool: asyncpg.Pool) -> None:
    env_id = unique_name("E")
    now = datetime.now(UTC)
    delivered = event(env_id, EventType.DELIVERED, now + timedelta(seconds=2), attempt=2)
    late = event(env_id, EventType.SOFT_BOUNCE, now + timedelta(seconds=1), attempt=1)
    request = event(env_id, EventType.REQUEST, now)
    # Delivery results and request events travel separately: any order can arrive.
    await publish(
        pool,
        EventBatch(events=[delivered]),
        EventBatch(events=[late]),
        EventBatch(events=[request]),
        EventBatch(events=[delivered]),
    )
    row = await pool.fetchrow(
        "SELECT status, subject FROM events.messages WHERE env_id = $1", env_id
    )
    assert (row["status"], row["subject"]) == ("delivered", "Hi")
    kinds = await pool.fetch(
        "SELECT event FROM events.event_log WHERE env_id = $1 ORDER BY time", env_id
    )
    assert [k["event"] for k in kinds] == ["request", "soft_bounce", "delivered"]
