"""What an account queue drops, and what it counts in ``dropped``.

- **Retention**: the queue's TTL dead-letters expired messages into
  ``postwire.acct-expired``, where :func:`count_expired` counts them. A message that
  re-enters the queue from the invisible queue starts a new TTL, so receive and the
  counts also drop (and count) messages whose enqueue time is past retention
  (:func:`sift`).
- **Deleted by handle**: a tombstone (``notifier.queue_tombstones``) marks the message,
  and its copy is dropped, not counted, when it comes back.
- :func:`purge` forgets dedup keys, receipts and tombstones older than twice their
  queue's retention.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence

import asyncpg
from aio_pika.abc import AbstractIncomingMessage

from postwire_common.errors import NotFound
from postwire_notifier.queue_topology import QUEUE, TENANT, enqueued_ms

__all__ = ["count_dropped", "count_expired", "purge", "retention", "sift"]

log = logging.getLogger("postwire.notifier.queues")


async def retention(pool: asyncpg.Pool, tenant_id: str, queue: str) -> int:
    """The queue's ``message_retention`` (s); ``NotFound`` when there is no such queue."""
    retention = await pool.fetchval(
        "SELECT message_retention FROM notifier.queues WHERE tenant_id = $1 AND name = $2",
        tenant_id,
        queue,
    )
    if retention is None:
        raise NotFound(f"no queue {queue}")
    return int(retention)


async def sift(
    pool: asyncpg.Pool,
    got: Sequence[AbstractIncomingMessage],
    tenant_id: str,
    queue: str,
    keep: int,
) -> list[AbstractIncomingMessage]:
    """Drop messages deleted by handle (not counted) or past retention (counted), in
    one statement for the batch; the others are returned."""
    tombstoned = {
        row["message_id"]
        for row in await pool.fetch(
            "DELETE FROM notifier.queue_tombstones WHERE tenant_id = $1 AND queue = $2 "
            "AND message_id = ANY($3::text[]) RETURNING message_id",
            tenant_id,
            queue,
            [m.message_id or "" for m in got],
        )
    }
    cutoff = time.time() * 1000 - keep * 1000
    live: list[AbstractIncomingMessage] = []
    for msg in got:
        if msg.message_id in tombstoned:
            await msg.ack()
        elif enqueued_ms(msg) < cutoff:
            await count_dropped(pool, tenant_id, queue, msg.message_id or "")
            await msg.ack()
        else:
            live.append(msg)
    return live


async def count_dropped(pool: asyncpg.Pool, tenant_id: str, queue: str, message_id: str) -> None:
    await pool.execute(
        "WITH r AS (DELETE FROM notifier.queue_receipts WHERE tenant_id = $1 AND queue = $2 "
        "AND message_id = $3) "
        "UPDATE notifier.queues SET dropped = dropped + 1 WHERE tenant_id = $1 AND name = $2",
        tenant_id,
        queue,
        message_id,
    )


async def count_expired(pool: asyncpg.Pool, msg: AbstractIncomingMessage) -> None:
    """A message past retention, dead-lettered by its queue: counted unless deleted."""
    headers = msg.headers or {}
    tenant_id, queue = str(headers.get(TENANT, "")), str(headers.get(QUEUE, ""))
    try:
        deleted = await pool.fetchval(
            "DELETE FROM notifier.queue_tombstones WHERE tenant_id = $1 AND queue = $2 "
            "AND message_id = $3 RETURNING 1",
            tenant_id,
            queue,
            msg.message_id,
        )
        if deleted is None:
            await count_dropped(pool, tenant_id, queue, msg.message_id or "")
    except Exception as exc:  # PostgreSQL away: the broker hands it out again
        log.warning("expired message not counted yet", extra={"error": repr(exc)})
        await msg.nack(requeue=True)
        return
    await msg.ack()


async def purge(pool: asyncpg.Pool) -> None:
    """Forget dedup keys, receipts and tombstones older than their queue's retention."""
    for table, column in (
        ("queue_seen", "seen_at"),
        ("queue_receipts", "visible_at"),
        ("queue_tombstones", "deleted_at"),
    ):
        await pool.execute(
            f"DELETE FROM notifier.{table} t USING notifier.queues q "  # noqa: S608
            "WHERE t.tenant_id = q.tenant_id AND t.queue = q.name "
            f"AND t.{column} < now() - make_interval(secs => q.message_retention * 2)"
        )
