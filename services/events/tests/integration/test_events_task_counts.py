"""Tasks' delivered and failed counts on the real PostgreSQL: a message counts once,
whatever is repeated, reordered or recorded concurrently; a bounce after delivery moves
it; the changed counts reach the outbox, coalesced per task, as absolute figures."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import pytest
from faststream.rabbit import TestRabbitBroker

from postwire_common import db
from postwire_common.broker import topology
from postwire_common.broker.factory import make_broker
from postwire_common.config import Settings
from postwire_common.schemas import DeliveryStatus, EventBatch, EventType, MailEvent, TaskCounts
from postwire_events import handlers
from postwire_events.store import EventsStore
from postwire_events.task_count_store import TaskCountStore
from postwire_testkit.infra import migrated_database, unique_name

pytestmark = pytest.mark.integration
T0 = datetime.now(UTC)
STATUS = {
    EventType.DELIVERED: DeliveryStatus.DELIVERED,
    EventType.FAILED: DeliveryStatus.FAILED,
    EventType.INVALID: DeliveryStatus.INVALID_ADDRESS,
}


@pytest.fixture(scope="module")
async def pool() -> AsyncIterator[asyncpg.Pool]:
    async with migrated_database() as url:
        made = await db.create_pool(url)
        yield made
        await made.close()


def event(
    env_id: str, kind: EventType, seconds: float = 0, *, task: str | None = None, **extra: Any
) -> MailEvent:
    """``task`` goes on the request event only, as ingest sends it."""
    return MailEvent(
        event_id=f"{env_id}:{kind.value}:{seconds}", event=kind, env_id=env_id,
        msg_id=f"<{env_id}@x>", tenant_id="t", account="s@x", sender="s@x", rcpt="r@y",
        status=STATUS.get(kind), task_id=task if kind is EventType.REQUEST else None,
        recv_time=T0, time=T0 + timedelta(seconds=seconds), **extra,
    )  # fmt: skip


def sent(task: str, n: int) -> tuple[list[str], list[MailEvent]]:
    ids = [unique_name("E") for _ in range(n)]
    return ids, [event(env_id, EventType.REQUEST, task=task) for env_id in ids]


async def counts(pool: asyncpg.Pool, task: str) -> tuple[int, int] | None:
    row = await pool.fetchrow(
        "SELECT delivered, failed FROM events.task_counts WHERE tenant_id = 't' AND task_id = $1",
        task,
    )
    return None if row is None else (row["delivered"], row["failed"])


async def announced(pool: asyncpg.Pool, task: str) -> list[dict[str, Any]]:
    rows = await pool.fetch("SELECT exchange, routing_key, body FROM events.outbox ORDER BY id")
    found = []
    for r in rows:
        if r["exchange"] != topology.TASKS.name:
            continue
        assert r["routing_key"] == topology.TASK_COUNTS_KEY
        message = TaskCounts.model_validate_json(bytes(r["body"]))
        found += [c.model_dump() for c in message.counts if c.task_id == task]
    return found


async def test_duplicates_and_replays_count_once(pool: asyncpg.Pool) -> None:
    store = EventsStore(pool)
    task = unique_name("task")
    ids, requests = sent(task, 4)
    results = [
        event(ids[0], EventType.DELIVERED, 2),
        event(ids[1], EventType.DELIVERED, 2),
        event(ids[2], EventType.FAILED, 2),
        event(ids[3], EventType.SOFT_BOUNCE, 2),  # not finished: not counted
    ]
    await store.record_many([*requests, *results, results[0]])  # a duplicate within
    assert await counts(pool, task) == (2, 1)
    await store.record_many(results)  # redelivered
    await store.record_many([*results, *requests])
    # Another event of a finished message, with a new id (a second delivery report).
    await store.record_many([event(ids[0], EventType.DELIVERED, 3)])
    assert await counts(pool, task) == (2, 1)
    # Mail without a task has no counts.
    other = unique_name("E")
    await store.record_many([event(other, EventType.REQUEST), event(other, EventType.FAILED, 1)])
    assert (
        await pool.fetchval("SELECT counted FROM events.messages WHERE env_id = $1", other) is None
    )


async def test_a_result_before_its_request_counts_once_the_task_is_known(
    pool: asyncpg.Pool,
) -> None:
    store = EventsStore(pool)
    task = unique_name("task")
    env_id = unique_name("E")
    await store.record_many([event(env_id, EventType.DELIVERED, 2)])  # no task on results
    assert await counts(pool, task) is None
    await store.record_many([event(env_id, EventType.REQUEST, task=task)])
    assert await counts(pool, task) == (1, 0)
    await store.record_many([event(env_id, EventType.DELIVERED, 2)])
    assert await counts(pool, task) == (1, 0)


async def test_a_bounce_after_delivery_moves_the_message_to_failed(pool: asyncpg.Pool) -> None:
    store = EventsStore(pool)
    task = unique_name("task")
    ids, requests = sent(task, 2)
    await store.record_many(
        [*requests, event(ids[0], EventType.DELIVERED, 2), event(ids[1], EventType.DELIVERED, 2)]
    )
    assert await counts(pool, task) == (2, 0)
    bounce = event(ids[0], EventType.FAILED, 60)  # a DSN to the inbound MX
    await store.record_many([bounce])
    assert await counts(pool, task) == (1, 1)
    await store.record_many([bounce, event(ids[0], EventType.DELIVERED, 2)])
    assert await counts(pool, task) == (1, 1)
    # Both in one batch: the message counts as failed only.
    env_id = unique_name("E")
    await store.record_many(
        [
            event(env_id, EventType.FAILED, 60),
            event(env_id, EventType.REQUEST, task=task),
            event(env_id, EventType.DELIVERED, 2),
        ]
    )
    assert await counts(pool, task) == (1, 2)


async def test_undeliverable_counts_as_failed_and_suppressed_not_at_all(
    pool: asyncpg.Pool,
) -> None:
    store = EventsStore(pool)
    task = unique_name("task")
    ids, requests = sent(task, 2)
    await store.record_many(
        [
            *requests,
            event(ids[0], EventType.INVALID, 1, err_code=556),  # null MX, decided by delivery
            event(ids[1], EventType.INVALID, 1),  # suppressed at accept time
        ]
    )
    assert await counts(pool, task) == (0, 1)


async def test_concurrent_batches_count_each_message_once(pool: asyncpg.Pool) -> None:
    store = EventsStore(pool)
    task = unique_name("task")
    ids, requests = sent(task, 30)
    delivered = [event(env_id, EventType.DELIVERED, 2) for env_id in ids]
    bounced = [event(env_id, EventType.FAILED, 60) for env_id in ids[:10]]
    batches = [requests, delivered, bounced, requests[::-1], delivered[5:], bounced[3:]] * 4
    await asyncio.gather(*(store.record_many(b) for b in batches))
    assert await counts(pool, task) == (20, 10)
    truth = await pool.fetchrow(
        "SELECT count(*) FILTER (WHERE status = 'delivered') AS delivered, "
        "count(*) FILTER (WHERE status = 'failed') AS failed "
        "FROM events.messages WHERE tenant_id = 't' AND task_id = $1",
        task,
    )
    assert await counts(pool, task) == (truth["delivered"], truth["failed"])


async def test_changed_counts_are_flushed_to_the_outbox_once_per_task(
    pool: asyncpg.Pool,
) -> None:
    woken: list[bool] = []
    store = EventsStore(pool, counted=lambda: woken.append(True))
    flusher = TaskCountStore(pool)
    await flusher.flush(1000)  # what earlier tests left pending
    task = unique_name("task")
    ids, requests = sent(task, 3)
    await store.record_many(requests)
    assert woken == []  # nothing counted yet
    for env_id in ids:  # three changes before the flush ...
        await store.record_many([event(env_id, EventType.DELIVERED, 2)])
    assert woken == [True] * 3
    assert await flusher.flush(1000) == 1  # ... one announcement
    first = await announced(pool, task)
    assert [(c["tenant_id"], c["delivered"], c["failed"]) for c in first] == [("t", 3, 0)]
    assert await flusher.flush(1000) == 0  # nothing changed since

    await store.record_many([event(ids[0], EventType.FAILED, 60)])
    assert await flusher.flush(1000) == 1
    later = await announced(pool, task)
    assert [(c["delivered"], c["failed"]) for c in later] == [(3, 0), (2, 1)]
    assert later[1]["time"] > later[0]["time"]
    body = await pool.fetchval(
        "SELECT body FROM events.outbox WHERE exchange = $1 ORDER BY id DESC LIMIT 1",
        topology.TASKS.name,
    )
    assert set(json.loads(bytes(body))) == {"counts"}  # a list: the relay merges them


async def test_the_subscriber_counts_a_redelivered_batch_once(pool: asyncpg.Pool) -> None:
    task = unique_name("task")
    ids, requests = sent(task, 2)
    results = EventBatch(
        events=[event(ids[0], EventType.DELIVERED, 2), event(ids[1], EventType.FAILED, 2)]
    )
    broker = make_broker(Settings(), service="events-test")
    handlers.register(broker, EventsStore(pool), concurrency=8)
    async with TestRabbitBroker(broker) as test:
        for batch in (results, EventBatch(events=requests), results, results):
            await test.publish(batch, exchange=topology.EVENTS, routing_key="test")
    assert await counts(pool, task) == (1, 1)
