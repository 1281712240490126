"""What an account queue drops, and what it counts in ``dropped``.

- **Retention**: the queue's TTL dead-letters expired messages into
  ``postwire.acct-expired``, where :func:`count_expired` counts them. A message that
  re-enters the queue from the invisible queue starts a new TTL, so receive and the
  counts also drop (and count) messages whose enqueue time is past retention
  (:func:`sift`).
- **Deleted by handle**: a tombstone (``notifier.queue_tombstones``) marks the message,
  and its copy is dropped, not counted, when it comes back.
- **Superseded**: older copies of a message whose visibility was changed are dropped,
  not counted, when they come back; copies back before their time are hidden again
  (``queue_visibility``).
- :func:`purge` forgets dedup keys, receipts and tombstones once their messages are past
  retention wherever their copies are.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence

import asyncpg
from aio_pika.abc import AbstractChannel, AbstractIncomingMessage

from postwire_common.errors import NotFound
from postwire_notifier.queue_topology import QUEUE, RECEIPT, TENANT, enqueued_ms
from postwire_notifier.queue_visibility import Fate, fate, hide_again

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
    channel: AbstractChannel,
    got: Sequence[AbstractIncomingMessage],
    tenant_id: str,
    queue: str,
    keep: int,
) -> list[AbstractIncomingMessage]:
    """Settle each copy's :func:`~postwire_notifier.queue_visibility.fate`: drop those
    superseded or deleted (not counted) and those past retention (counted), hide again
    those whose visibility was extended; the others are returned."""
    ids = [m.message_id or "" for m in got]
    rows = {
        row["message_id"]: row
        for row in await pool.fetch(
            "SELECT message_id, receipt, ceil(1000 * extract(epoch FROM "
            "visible_at - clock_timestamp()))::bigint AS wait_ms "
            "FROM notifier.queue_receipts WHERE tenant_id = $1 AND queue = $2 "
            "AND message_id = ANY($3::text[])",
            tenant_id,
            queue,
            ids,
        )
    }

    def current(msg: AbstractIncomingMessage) -> str | None:
        row = rows.get(msg.message_id or "")
        return None if row is None else str(row["receipt"])

    def superseded(msg: AbstractIncomingMessage) -> bool:
        return fate(_receipt(msg), current(msg), 0, tombstoned=False, expired=False) is (
            Fate.SUPERSEDED
        )

    # Only a message's current copy takes its tombstone: an older one may come first.
    tombstoned = await _take_tombstones(
        pool, tenant_id, queue, [m.message_id or "" for m in got if not superseded(m)]
    )
    cutoff = time.time() * 1000 - keep * 1000
    live: list[AbstractIncomingMessage] = []
    for msg in got:
        row = rows.get(msg.message_id or "")
        wait_ms = 0 if row is None else int(row["wait_ms"])
        match fate(
            _receipt(msg),
            current(msg),
            wait_ms,
            tombstoned=msg.message_id in tombstoned,
            expired=enqueued_ms(msg) < cutoff,
        ):
            case Fate.SUPERSEDED:
                await forget_superseded(pool, tenant_id, queue, msg.message_id or "")
                await msg.ack()
            case Fate.DELETED:
                await msg.ack()
            case Fate.EXPIRED:
                await count_dropped(pool, tenant_id, queue, msg.message_id or "")
                await msg.ack()
            case Fate.HIDDEN:
                await hide_again(channel, msg, tenant_id, queue, wait_ms)
            case Fate.LIVE:
                live.append(msg)
    return live


def _receipt(msg: AbstractIncomingMessage) -> object:
    return (msg.headers or {}).get(RECEIPT)


async def _take_tombstones(
    pool: asyncpg.Pool, tenant_id: str, queue: str, message_ids: list[str]
) -> set[str]:
    return {
        row["message_id"]
        for row in await pool.fetch(
            "DELETE FROM notifier.queue_tombstones WHERE tenant_id = $1 AND queue = $2 "
            "AND message_id = ANY($3::text[]) RETURNING message_id",
            tenant_id,
            queue,
            message_ids,
        )
    }


async def forget_superseded(
    pool: asyncpg.Pool, tenant_id: str, queue: str, message_id: str
) -> None:
    """A superseded copy is gone: it no longer stands between the counts and the depth."""
    await pool.execute(
        "UPDATE notifier.queue_receipts SET superseded = greatest(superseded - 1, 0) "
        "WHERE tenant_id = $1 AND queue = $2 AND message_id = $3",
        tenant_id,
        queue,
        message_id,
    )


async def count_dropped(pool: asyncpg.Pool, tenant_id: str, queue: str, message_id: str) -> None:
    # The receipt row stays (stale, without its body): it still tells the message's
    # older copies, if any, from the one counted here.
    await pool.execute(
        "WITH r AS (UPDATE notifier.queue_receipts SET body = NULL, "
        "visible_at = least(visible_at, now()) WHERE tenant_id = $1 AND queue = $2 "
        "AND message_id = $3) "
        "UPDATE notifier.queues SET dropped = dropped + 1 WHERE tenant_id = $1 AND name = $2",
        tenant_id,
        queue,
        message_id,
    )


async def count_expired(pool: asyncpg.Pool, msg: AbstractIncomingMessage) -> None:
    """A message past retention, dead-lettered by its queue: counted unless deleted or
    superseded."""
    headers = msg.headers or {}
    tenant_id, queue = str(headers.get(TENANT, "")), str(headers.get(QUEUE, ""))
    try:
        current = await pool.fetchval(
            "SELECT receipt FROM notifier.queue_receipts WHERE tenant_id = $1 AND queue = $2 "
            "AND message_id = $3",
            tenant_id,
            queue,
            msg.message_id,
        )
        if fate(_receipt(msg), current, 0, tombstoned=False, expired=True) is Fate.SUPERSEDED:
            await forget_superseded(pool, tenant_id, queue, msg.message_id or "")
            await msg.ack()
            return
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
    """Forget dedup keys, receipts and tombstones once every copy of their message is
    past retention: older than twice the retention plus the visibility timeout (a copy
    can come back that long after its receipt was current)."""
    for table, column in (
        ("queue_seen", "seen_at"),
        ("queue_receipts", "visible_at"),
        ("queue_tombstones", "deleted_at"),
    ):
        await pool.execute(
            f"DELETE FROM notifier.{table} t USING notifier.queues q "  # noqa: S608
            "WHERE t.tenant_id = q.tenant_id AND t.queue = q.name "
            f"AND t.{column} < now() - make_interval(secs => q.message_retention * 2 "
            "+ q.visibility_timeout)"
        )
