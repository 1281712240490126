"""Account queues against the real RabbitMQ and PostgreSQL: one copy per dedup key,
receivers never share a message, handles go stale, deleted copies never come back,
expired messages are counted."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Iterator

import aio_pika
import asyncpg
import pytest

from postwire_common import db
from postwire_common.crypto import Keyring, generate_key
from postwire_common.errors import NotFound
from postwire_notifier.amqp_queues import AmqpQueues, Enqueue
from postwire_notifier.queue_topology import ENQUEUED, EXCHANGE, QUEUE, TENANT, routing_key
from postwire_notifier.resource_store import Queue, ResourceStore
from postwire_testkit.infra import migrated_database, temp_vhost, unique_name
from postwire_testkit.wait import eventually

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def broker_url() -> Iterator[str]:
    with temp_vhost() as url:
        yield url


@pytest.fixture(scope="module")
async def pool() -> AsyncIterator[asyncpg.Pool]:
    async with migrated_database() as url:
        made = await db.create_pool(url)
        yield made
        await made.close()


@pytest.fixture
async def store(pool: asyncpg.Pool, broker_url: str) -> AsyncIterator[AmqpQueues]:
    made = AmqpQueues(pool, broker_url)
    await made.start()
    yield made
    await made.stop()


async def a_queue(
    store: AmqpQueues, visibility: int = 30, size: int = 65536, retention: int = 345600
) -> tuple[str, str]:
    tenant, name = unique_name("t"), unique_name("q")
    await ResourceStore(store.pool, Keyring([generate_key()])).create_queue(
        tenant, Queue(name, visibility, retention, size)
    )
    await store.declare(tenant, name, visibility, retention)
    return tenant, name


async def test_an_event_is_queued_once_and_oversized_messages_are_skipped(
    store: AmqpQueues,
) -> None:
    tenant, name = await a_queue(store, size=1024)
    one = Enqueue(tenant, name, "E1|t|s", b"x=1", "text/plain")
    assert await store.enqueue([one, one]) == 1
    assert await store.enqueue([one]) == 0
    assert await store.enqueue([Enqueue(tenant, name, "E2|t|s", b"x" * 1025, "text/plain")]) == 0
    assert await store.enqueue([Enqueue(tenant, "no-such-queue", "E3", b"x", "text/plain")]) == 0
    assert (await store.counts(tenant, name))["depth"] == 1


async def test_concurrent_receivers_never_share_a_message(store: AmqpQueues) -> None:
    tenant, name = await a_queue(store)
    await store.enqueue([Enqueue(tenant, name, f"E{i}", b"x", "text/plain") for i in range(40)])
    batches = await asyncio.gather(*(store.receive(tenant, name, 16, 30) for _ in range(5)))
    ids = [m["message_id"] for batch in batches for m in batch]
    assert len(ids) == len(set(ids)) == 40
    assert all(m["dequeue_count"] == 1 for batch in batches for m in batch)
    assert await store.counts(tenant, name) == {"depth": 0, "in_flight": 40, "oldest_age": 0.0}


async def test_a_handle_is_stale_once_the_message_is_received_again(store: AmqpQueues) -> None:
    tenant, name = await a_queue(store, visibility=1)
    await store.enqueue([Enqueue(tenant, name, "E1", b"x", "text/plain")])
    [first] = await store.receive(tenant, name, 1, 1)

    async def again() -> list[dict[str, object]]:
        return await store.receive(tenant, name, 1, 1)

    [second] = await eventually(again, what="the message visible again")
    assert second["dequeue_count"] == 2
    assert second["message_id"] == first["message_id"]
    with pytest.raises(NotFound):
        await store.delete(tenant, name, first["receipt_handle"])
    with pytest.raises(NotFound):
        await store.delete("another-tenant", name, second["receipt_handle"])
    await store.delete(tenant, name, second["receipt_handle"])
    assert (await store.counts(tenant, name))["depth"] == 0
    await asyncio.sleep(1.5)  # the deleted copy comes back from the invisible queue ...
    assert await store.receive(tenant, name, 16, 1) == []  # ... and is dropped
    counts = await store.counts(tenant, name)
    assert (counts["depth"], counts["in_flight"]) == (0, 0)


async def test_messages_past_retention_are_dropped_and_counted(
    store: AmqpQueues, broker_url: str
) -> None:
    tenant, name = await a_queue(store, retention=60)
    async with await aio_pika.connect(broker_url) as connection:
        channel = await connection.channel()
        exchange = await channel.get_exchange(EXCHANGE)
        old = int(time.time() * 1000) - 61_000
        headers = {TENANT: tenant, QUEUE: name, ENQUEUED: old}
        await exchange.publish(
            aio_pika.Message(b"old", message_id="m1", headers=headers),
            routing_key=routing_key(tenant, name),
        )
    counts = await store.counts(tenant, name)
    assert (counts["depth"], counts["oldest_age"]) == (0, 0.0)
    assert (await ResourceStore(store.pool, Keyring([generate_key()])).queue(tenant, name))[
        "dropped"
    ] == 1


async def test_a_batch_acknowledges_current_handles_and_names_the_stale_ones(
    store: AmqpQueues,
) -> None:
    tenant, name = await a_queue(store)
    await store.enqueue([Enqueue(tenant, name, f"E{i}", b"x", "text/plain") for i in range(5)])
    got = await store.receive(tenant, name, 16, 30)
    handles = [m["receipt_handle"] for m in got]
    assert len(handles) == 5
    await store.delete(tenant, name, handles[0])
    done = await store.delete_many(tenant, name, [*handles, "not-a-handle"])
    assert done == set(handles[1:])  # the first was acknowledged already
    assert await store.delete_many("another-tenant", name, handles) == set()
    assert await store.counts(tenant, name) == {"depth": 0, "in_flight": 0, "oldest_age": 0.0}


async def test_a_visibility_made_zero_shows_the_message_at_once_and_only_once(
    store: AmqpQueues,
) -> None:
    tenant, name = await a_queue(store, visibility=2)
    await store.enqueue([Enqueue(tenant, name, "E1", b"x=1", "text/plain")])
    [first] = await store.receive(tenant, name, 1, 2)
    handle, visible_at = await store.change_visibility(tenant, name, first["receipt_handle"], 0)
    assert handle != first["receipt_handle"]
    assert visible_at.timestamp() <= time.time()
    with pytest.raises(NotFound):  # the old handle is stale at once
        await store.change_visibility(tenant, name, first["receipt_handle"], 5)
    assert (await store.counts(tenant, name))["depth"] == 1

    [again] = await store.receive(tenant, name, 16, 2)
    assert (again["message_id"], again["body"]) == (first["message_id"], "x=1")
    assert again["dequeue_count"] == 2
    with pytest.raises(NotFound):
        await store.change_visibility(tenant, name, handle, 5)  # received again since
    await store.delete(tenant, name, again["receipt_handle"])
    await asyncio.sleep(2.5)  # the superseded copy comes back from the invisible queue ...
    assert await store.receive(tenant, name, 16, 2) == []  # ... and is dropped
    assert await store.counts(tenant, name) == {"depth": 0, "in_flight": 0, "oldest_age": 0.0}


async def test_a_visibility_longer_than_the_queues_keeps_the_message_hidden(
    store: AmqpQueues,
) -> None:
    tenant, name = await a_queue(store, visibility=1)
    await store.enqueue([Enqueue(tenant, name, "E1", b"x=1", "text/plain")])
    [first] = await store.receive(tenant, name, 1, 1)
    _, visible_at = await store.change_visibility(tenant, name, first["receipt_handle"], 4)
    assert visible_at.timestamp() > time.time() + 3
    await asyncio.sleep(2)  # past the queue's visibility timeout (1 s): still hidden
    assert await store.receive(tenant, name, 16, 1) == []
    assert await store.counts(tenant, name) == {"depth": 0, "in_flight": 1, "oldest_age": 0.0}

    [again] = await store.receive(tenant, name, 16, 1, wait=5)
    assert time.time() >= visible_at.timestamp()
    assert (again["message_id"], again["dequeue_count"]) == (first["message_id"], 2)
    await store.delete(tenant, name, again["receipt_handle"])
    await asyncio.sleep(1.5)
    assert await store.receive(tenant, name, 16, 1) == []  # exactly once


async def test_a_message_deleted_after_a_shortened_visibility_never_comes_back(
    store: AmqpQueues,
) -> None:
    tenant, name = await a_queue(store, visibility=2)
    await store.enqueue([Enqueue(tenant, name, "E1", b"x=1", "text/plain")])
    [first] = await store.receive(tenant, name, 1, 2)
    handle, _ = await store.change_visibility(tenant, name, first["receipt_handle"], 1)
    await store.delete(tenant, name, handle)
    await asyncio.sleep(2.5)  # both copies are back in the account queue ...
    assert await store.receive(tenant, name, 16, 2) == []  # ... and both are dropped
    assert await store.counts(tenant, name) == {"depth": 0, "in_flight": 0, "oldest_age": 0.0}
    dropped = await store.pool.fetchval(
        "SELECT dropped FROM notifier.queues WHERE tenant_id = $1 AND name = $2", tenant, name
    )
    assert dropped == 0
