"""The messages of account queues, with MNS's receive semantics, in PostgreSQL.

- **Receive** hands out up to 16 visible messages, oldest first. Each gets a fresh
  receipt handle (122 random bits) and becomes invisible for the queue's visibility
  timeout; its ``dequeue_count`` goes up by one. ``SKIP LOCKED`` keeps concurrent
  receivers from taking the same message.
- **Delete** by receipt handle acknowledges. A message received again since has a new
  handle, so the old one is stale and answers ``not_found``.
- A message not deleted in time is simply visible again.
- **Retention**: messages older than the queue's ``message_retention`` are never handed
  out, and are deleted and counted in ``dropped`` (before each receive and queue read,
  and by the notifier's periodic purge).
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import asyncpg

from postwire_common.errors import NotFound


@dataclass(frozen=True, slots=True)
class Enqueue:
    tenant_id: str
    queue: str
    dedup: str
    body: bytes
    content_type: str


_PURGE = """
WITH gone AS (
    DELETE FROM notifier.queue_messages m
    USING notifier.queues q
    WHERE m.tenant_id = q.tenant_id AND m.queue = q.name
        AND ($1::text IS NULL OR (q.tenant_id = $1 AND q.name = $2))
        AND m.enqueued_at < now() - make_interval(secs => q.message_retention)
    RETURNING m.tenant_id, m.queue
), counted AS (
    SELECT tenant_id, queue, count(*) AS n FROM gone GROUP BY tenant_id, queue
)
UPDATE notifier.queues q SET dropped = q.dropped + c.n
FROM counted c WHERE q.tenant_id = c.tenant_id AND q.name = c.queue
"""

_RECEIVE = """
UPDATE notifier.queue_messages m
SET receipt = replace(gen_random_uuid()::text, '-', ''),
    visible_at = now() + make_interval(secs => $4),
    dequeue_count = m.dequeue_count + 1
FROM (
    SELECT id FROM notifier.queue_messages
    WHERE tenant_id = $1 AND queue = $2 AND visible_at <= now()
    ORDER BY enqueued_at, id
    LIMIT $3
    FOR UPDATE SKIP LOCKED
) c
WHERE m.id = c.id
RETURNING m.message_id, m.receipt AS receipt_handle, m.body, m.content_type,
    m.enqueued_at AS enqueue_time, m.dequeue_count
"""


class QueueStore:
    def __init__(self, pool: asyncpg.Pool) -> None:
        self.pool = pool

    async def enqueue(self, messages: Sequence[Enqueue]) -> int:
        """Add messages to their queues, once per ``dedup`` key; messages for queues that
        are gone are skipped. Returns how many were added."""
        if not messages:
            return 0
        columns = (
            [m.tenant_id for m in messages],
            [m.queue for m in messages],
            [uuid.uuid4().hex for _ in messages],
            [m.dedup for m in messages],
            [m.body for m in messages],
            [m.content_type for m in messages],
        )
        added = await self.pool.fetchval(
            "WITH new AS (INSERT INTO notifier.queue_messages (tenant_id, queue, message_id, "
            "dedup, body, content_type) SELECT u.t, u.q, u.m, u.d, u.b, u.c "
            "FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::bytea[], "
            "$6::text[]) AS u(t, q, m, d, b, c) "
            "JOIN notifier.queues q ON q.tenant_id = u.t AND q.name = u.q "
            "WHERE octet_length(u.b) <= q.max_message_size "
            "ON CONFLICT (tenant_id, queue, dedup) DO NOTHING RETURNING 1) "
            "SELECT count(*) FROM new",
            *columns,
        )
        return int(added)

    async def purge(self, tenant_id: str | None = None, queue: str | None = None) -> None:
        """Drop and count messages past retention: of one queue, or of every queue."""
        await self.pool.execute(_PURGE, tenant_id, queue)

    async def receive(
        self, tenant_id: str, queue: str, limit: int, visibility: int
    ) -> list[dict[str, Any]]:
        await self.purge(tenant_id, queue)
        rows = await self.pool.fetch(_RECEIVE, tenant_id, queue, limit, visibility)
        found = sorted((dict(r) for r in rows), key=lambda r: r["enqueue_time"])
        for row in found:
            row["body"] = bytes(row["body"]).decode("utf-8")
        return found

    async def delete(self, tenant_id: str, queue: str, receipt: str) -> None:
        gone = await self.pool.fetchval(
            "DELETE FROM notifier.queue_messages WHERE receipt = $3 AND tenant_id = $1 "
            "AND queue = $2 RETURNING 1",
            tenant_id,
            queue,
            receipt,
        )
        if gone is None:
            raise NotFound(
                "no message with this receipt handle (deleted already, or received again "
                "since: use the newest handle)"
            )

    async def counts(self, tenant_id: str, queue: str) -> dict[str, Any]:
        """Visible messages, messages in flight, and the oldest message's age (s)."""
        await self.purge(tenant_id, queue)
        row = await self.pool.fetchrow(
            "SELECT count(*) FILTER (WHERE visible_at <= now()) AS depth, "
            "count(*) FILTER (WHERE visible_at > now()) AS in_flight, "
            "coalesce(extract(epoch FROM now() - min(enqueued_at)), 0)::float8 AS oldest_age "
            "FROM notifier.queue_messages WHERE tenant_id = $1 AND queue = $2",
            tenant_id,
            queue,
        )
        return dict(row)
