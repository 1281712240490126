"""Account queues against the real PostgreSQL: one copy per dedup key, receivers never
share a message, handles go stale when a message is received again."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import asyncpg
import pytest

from postwire_common import db
from postwire_common.crypto import Keyring, generate_key
from postwire_common.errors import NotFound
from postwire_notifier.queue_store import Enqueue, QueueStore
from postwire_notifier.resource_store import Queue, ResourceStore
from postwire_testkit.infra import migrated_database, unique_name

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
async def pool() -> AsyncIterator[asyncpg.Pool]:
    async with migrated_database() as url:
        made = await db.create_pool(url)
        yield made
        await made.close()


async def a_queue(pool: asyncpg.Pool, visibility: int = 30, size: int = 65536) -> tuple[str, str]:
    tenant, name = unique_name("t"), unique_name("q")
    await ResourceStore(pool, Keyring([generate_key()])).create_queue(
        tenant, Queue(name, visibility, 345600, size)
    )
    return tenant, name


async def test_an_event_is_queued_once_and_oversized_messages_are_skipped(
    pool: asyncpg.Pool,
) -> None:
    tenant, name = await a_queue(pool, size=1024)
    store = QueueStore(pool)
    one = Enqueue(tenant, name, "E1|t|s", b"x=1", "text/plain")
    assert await store.enqueue([one, one]) == 1
    assert await store.enqueue([one]) == 0
    assert await store.enqueue([Enqueue(tenant, name, "E2|t|s", b"x" * 1025, "text/plain")]) == 0
    assert await store.enqueue([Enqueue(tenant, "no-such-queue", "E3", b"x", "text/plain")]) == 0
    assert (await store.counts(tenant, name))["depth"] == 1


async def test_concurrent_receivers_never_share_a_message(pool: asyncpg.Pool) -> None:
    tenant, name = await a_queue(pool)
    store = QueueStore(pool)
    await store.enqueue([Enqueue(tenant, name, f"E{i}", b"x", "text/plain") for i in range(40)])
    batches = await asyncio.gather(*(store.receive(tenant, name, 16, 30) for _ in range(5)))
    ids = [m["message_id"] for batch in batches for m in batch]
    assert len(ids) == len(set(ids)) == 40
    assert all(m["dequeue_count"] == 1 for batch in batches for m in batch)


async def test_a_handle_is_stale_once_the_message_is_received_again(pool: asyncpg.Pool) -> None:
    tenant, name = await a_queue(pool, visibility=1)
    store = QueueStore(pool)
    await store.enqueue([Enqueue(tenant, name, "E1", b"x", "text/plain")])
    [first] = await store.receive(tenant, name, 1, 1)
    await pool.execute(
        "UPDATE notifier.queue_messages SET visible_at = now() WHERE tenant_id = $1", tenant
    )
    [again] = await store.receive(tenant, name, 1, 1)
    assert again["dequeue_count"] == 2
    with pytest.raises(NotFound):
        await store.delete(tenant, name, first["receipt_handle"])
    with pytest.raises(NotFound):
        await store.delete("another-tenant", name, again["receipt_handle"])
    await store.delete(tenant, name, again["receipt_handle"])
    assert (await store.counts(tenant, name))["depth"] == 0
