"""Account queues as real RabbitMQ queues, with MNS's receive semantics over HTTP:
:class:`AmqpQueues` holds the broker connection and the enqueue path, and is what the
rest of the notifier calls; each other concern has its module.

::

    RuleFanout ─enqueue─▶ postwire.acct (direct, key <tenant>.<queue>)
                             │
                             ▼
        postwire.acct.<tenant>.<queue>   quorum; x-message-ttl = retention ──expired──▶
             │        ▲                                          postwire.acct-expired
     HTTP receive     │ dead-lettered back after                 (counted in ``dropped``)
     (basic.get,      │ the visibility timeout
     copy, ack)       │
             ▼        │
        postwire.acct-invisible.<tenant>.<queue>   quorum; x-message-ttl = visibility

- **Topology** (``queue_topology``): the exchange, each account queue's pair of quorum
  queues and their arguments, the headers every message carries.
- **Enqueue** (here) publishes with publisher confirms, once per dedup key: the keys
  already published are rows of ``notifier.queue_seen``, inserted in the transaction that
  publishes (a crash between the confirm and the commit can publish one twice:
  at-least-once). Oversize messages and queues that are gone are skipped.
- **Receive and delete** (``queue_receipts``): a received message is copied into the
  invisible queue under a fresh receipt handle, then acked; deleted by handle, it leaves
  a tombstone and its copy is dropped when it comes back.
- **Change of visibility** (``queue_visibility``): the receipt row says when a message is
  visible again; a new copy supersedes the old one, which is dropped when it comes back.
- **Retention** (``queue_retention``): expired messages are counted in ``dropped``, also
  those past retention found by receive and the counts.
- **Counts** (``queue_counts``): ``depth``, ``in_flight`` and ``oldest_age``.
- **AMQP**: an account may consume its queue directly (``broker_users``); messages it
  takes never pass the receipts.
"""

from __future__ import annotations

import asyncio
import functools
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import aio_pika
import asyncpg
from aio_pika.abc import AbstractRobustConnection

from postwire_notifier import (
    queue_counts,
    queue_receipts,
    queue_retention,
    queue_topology,
    queue_visibility,
)
from postwire_notifier.queue_topology import (
    DEQUEUES,
    ENQUEUED,
    EXCHANGE,
    QUEUE,
    TENANT,
    persistent_message,
    routing_key,
)

__all__ = ["AmqpQueues", "Enqueue"]

# How often a long poll looks again; a message waits at most this long for its receiver.
LONG_POLL_INTERVAL = 0.2


@dataclass(frozen=True, slots=True)
class Enqueue:
    tenant_id: str
    queue: str
    dedup: str
    body: bytes
    content_type: str


class AmqpQueues:
    def __init__(self, pool: asyncpg.Pool, broker_url: str) -> None:
        self.pool = pool
        self._url = broker_url
        self._connection: AbstractRobustConnection | None = None

    # lifecycle and topology --------------------------------------------------------

    async def start(self) -> None:
        """Connect, declare the shared topology and every account queue, count expiries."""
        self._connection = await aio_pika.connect_robust(self._url)
        channel = await self._connection.channel()
        expired = await queue_topology.declare_shared(channel)
        for row in await self.pool.fetch(
            "SELECT tenant_id, name, visibility_timeout, message_retention FROM notifier.queues"
        ):
            await self.declare(row["tenant_id"], row["name"], *row[2:])
        await channel.set_qos(prefetch_count=32)
        await expired.consume(functools.partial(queue_retention.count_expired, self.pool))

    async def stop(self) -> None:
        if self._connection is not None:
            await self._connection.close()

    def _channel(self) -> Any:
        assert self._connection is not None, "AmqpQueues.start() first"
        return self._connection.channel(publisher_confirms=True)

    async def declare(self, tenant_id: str, queue: str, visibility: int, retention: int) -> None:
        async with self._channel() as channel:
            await queue_topology.declare(channel, tenant_id, queue, visibility, retention)

    async def remove(self, tenant_id: str, queue: str) -> None:
        async with self._channel() as channel:
            await queue_topology.remove(channel, tenant_id, queue)

    # enqueue -----------------------------------------------------------------------

    async def enqueue(self, messages: Sequence[Enqueue]) -> int:
        """Publish messages to their queues, once per ``dedup`` key; messages for queues
        that are gone, or larger than their queue allows, are skipped. Returns how many
        were published."""
        if not messages:
            return 0
        firsts = {(m.tenant_id, m.queue, m.dedup): m for m in reversed(messages)}
        async with self.pool.acquire() as conn, conn.transaction(), self._channel() as channel:
            rows = await conn.fetch(
                "INSERT INTO notifier.queue_seen (tenant_id, queue, dedup) "
                "SELECT u.t, u.q, u.d FROM unnest($1::text[], $2::text[], $3::text[], "
                "$4::int[]) AS u(t, q, d, n) "
                "JOIN notifier.queues q ON q.tenant_id = u.t AND q.name = u.q "
                "WHERE u.n <= q.max_message_size "
                "ON CONFLICT DO NOTHING RETURNING tenant_id, queue, dedup",
                [m.tenant_id for m in firsts.values()],
                [m.queue for m in firsts.values()],
                [m.dedup for m in firsts.values()],
                [len(m.body) for m in firsts.values()],
            )
            exchange = await channel.get_exchange(EXCHANGE, ensure=False)
            now_ms = int(time.time() * 1000)
            publishes = []
            for row in rows:
                m = firsts[(row["tenant_id"], row["queue"], row["dedup"])]
                headers = {TENANT: m.tenant_id, QUEUE: m.queue, ENQUEUED: now_ms, DEQUEUES: 0}
                message = persistent_message(m.body, m.content_type, uuid.uuid4().hex, headers)
                publishes.append(
                    exchange.publish(message, routing_key=routing_key(m.tenant_id, m.queue))
                )
            await asyncio.gather(*publishes)  # every confirm before the keys commit
        return len(rows)

    # receive and delete, counts, retention (their modules) ---------------------------

    async def receive(
        self, tenant_id: str, queue: str, limit: int, visibility: int, wait: float = 0
    ) -> list[dict[str, Any]]:
        """Up to ``limit`` messages, long-polling up to ``wait`` seconds for the first
        (every HTTP surface receives through here: /v1 and MNS's)."""
        deadline = time.monotonic() + wait
        while True:
            found = await queue_receipts.receive(
                self.pool, self._channel, tenant_id, queue, limit, visibility
            )
            if found or time.monotonic() >= deadline:
                return found
            await asyncio.sleep(min(LONG_POLL_INTERVAL, max(0.0, deadline - time.monotonic())))

    async def delete(self, tenant_id: str, queue: str, receipt: str) -> None:
        await queue_receipts.delete(self.pool, tenant_id, queue, receipt)

    async def delete_many(self, tenant_id: str, queue: str, receipts: Sequence[str]) -> set[str]:
        """Acknowledge by receipt handle; returns the handles that were current (the
        others are stale: deleted already, visible again, or received again since)."""
        return await queue_receipts.delete_many(self.pool, tenant_id, queue, receipts)

    async def change_visibility(
        self, tenant_id: str, queue: str, receipt: str, seconds: int
    ) -> tuple[str, datetime]:
        """Make a received message visible again ``seconds`` from now: its new receipt
        handle and when it is visible (every HTTP surface changes it through here)."""
        return await queue_visibility.change(
            self.pool, self._channel, tenant_id, queue, receipt, seconds
        )

    async def counts(self, tenant_id: str, queue: str) -> dict[str, Any]:
        """Visible messages, messages in flight, and the oldest visible message's age (s)."""
        return await queue_counts.counts(self.pool, self._channel, tenant_id, queue)

    async def purge(self) -> None:
        """Forget dedup keys, receipts and tombstones older than their queue's retention."""
        await queue_retention.purge(self.pool)
