"""An account queue's counts, as ``GET /v1/queues/{name}`` shows them.

``depth`` and ``in_flight`` come from the broker's ready counts and the live receipts;
``oldest_age`` peeks at the head (``basic.get`` + requeue: quorum queues hand a returned
message out first), so it is the oldest *visible* message's. Deleted and expired
messages found at the head on the way are dropped, and copies back before their time
are hidden again (``queue_retention``).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import asyncpg
from aio_pika.abc import AbstractChannel

from postwire_notifier.queue_retention import retention, sift
from postwire_notifier.queue_topology import amqp_name, enqueued_ms, invisible_name

__all__ = ["counts"]


async def counts(
    pool: asyncpg.Pool, open_channel: Callable[[], Any], tenant_id: str, queue: str
) -> dict[str, Any]:
    """Visible messages, messages in flight, and the oldest visible message's age (s)."""
    keep = await retention(pool, tenant_id, queue)
    async with open_channel() as channel:
        # Counted before the peek: a requeued message shows in the count only later.
        main = await channel.declare_queue(amqp_name(tenant_id, queue), passive=True)
        hidden = await channel.declare_queue(invisible_name(tenant_id, queue), passive=True)
        oldest, removed = await _head(pool, channel, tenant_id, queue, keep)
    ready = (main.declaration_result.message_count or 0) - removed
    waiting = hidden.declaration_result.message_count or 0
    row = await pool.fetchrow(
        "SELECT (SELECT count(*) FROM notifier.queue_receipts WHERE tenant_id = $1 "
        "AND queue = $2 AND visible_at > now()) AS in_flight, "
        "(SELECT count(*) FROM notifier.queue_tombstones WHERE tenant_id = $1 "
        "AND queue = $2) AS deleted, "
        "(SELECT coalesce(sum(superseded), 0) FROM notifier.queue_receipts "
        "WHERE tenant_id = $1 AND queue = $2) AS superseded",
        tenant_id,
        queue,
    )
    in_flight = min(int(row["in_flight"]), waiting)
    return {
        # Deleted and superseded copies still in the broker are not messages.
        "depth": max(0, ready + waiting - in_flight - int(row["deleted"]) - int(row["superseded"])),
        "in_flight": in_flight,
        "oldest_age": 0.0 if oldest is None else max(0.0, time.time() - oldest / 1000),
    }


async def _head(
    pool: asyncpg.Pool, channel: AbstractChannel, tenant_id: str, queue: str, keep: int
) -> tuple[int | None, int]:
    """Drop deleted and expired messages at the head: the first other's enqueue time,
    and how many were dropped."""
    main = await channel.get_queue(amqp_name(tenant_id, queue), ensure=False)
    removed = 0
    while True:
        msg = await main.get(no_ack=False, fail=False)
        if msg is None:
            return None, removed
        if await sift(pool, channel, [msg], tenant_id, queue, keep):
            await msg.nack(requeue=True)
            return enqueued_ms(msg), removed
        removed += 1
