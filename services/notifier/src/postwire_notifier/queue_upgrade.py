"""Messages stored in ``notifier.queue_messages`` (account queues before they moved to
RabbitMQ) are moved into the broker when the notifier starts: published with their
message id, enqueue time and dequeue count, then deleted, a batch per transaction
(``SKIP LOCKED``: replicas starting together share the work). A crash between the
confirm and the commit publishes a batch twice (at-least-once). Receipt handles given
out before are not carried: such messages are simply visible again.
"""

from __future__ import annotations

import asyncpg

from postwire_notifier.amqp_queues import AmqpQueues

BATCH = 500


async def move_stored_messages(pool: asyncpg.Pool, queues: AmqpQueues) -> int:
    moved = 0
    while True:
        async with pool.acquire() as conn, conn.transaction():
            rows = await conn.fetch(
                "DELETE FROM notifier.queue_messages WHERE id IN (SELECT id FROM "
                "notifier.queue_messages ORDER BY enqueued_at, id LIMIT $1 "
                "FOR UPDATE SKIP LOCKED) RETURNING tenant_id, queue, message_id, body, "
                "content_type, enqueued_at, dequeue_count",
                BATCH,
            )
            if not rows:
                return moved
            await queues.publish_stored(sorted(rows, key=lambda r: r["enqueued_at"]))
            moved += len(rows)
