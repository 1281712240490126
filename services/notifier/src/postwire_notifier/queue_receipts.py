"""Receiving over HTTP with MNS's semantics: a message received is hidden for its
visibility timeout under a receipt handle, and deleted by that handle.

::

    receive ── basic.get up to ``limit`` ── sift (deleted, past retention) ──▶ take:
        copy with dequeue_count + 1 ──▶ invisible queue (confirmed)
        receipt (128 random bits) ──▶ notifier.queue_receipts
        ack the original
    delete(receipt) ── receipt row made stale ──▶ tombstone: the copy is dropped on return
    change visibility(receipt, vt) ── see ``queue_visibility``

Not deleted in time, the copy is dead-lettered back into the account queue and is
visible again. A handle is stale (``not_found``) once its message was received again,
deleted, or its visibility timeout passed. Messages an account consumes over AMQP never
pass the receipts, and a message received over HTTP comes back to AMQP consumers too
when its visibility timeout passes.
"""

from __future__ import annotations

import asyncio
import secrets
import uuid
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Any

import asyncpg
from aio_pika.abc import AbstractChannel, AbstractIncomingMessage

from postwire_common.errors import NotFound
from postwire_notifier.queue_retention import retention, sift
from postwire_notifier.queue_topology import (
    DEQUEUES,
    RECEIPT,
    amqp_name,
    enqueued_ms,
    invisible_name,
    persistent_message,
)
from postwire_notifier.queue_visibility import STALE

__all__ = ["STALE", "delete", "delete_many", "receive"]


async def receive(
    pool: asyncpg.Pool,
    open_channel: Callable[[], Any],
    tenant_id: str,
    queue: str,
    limit: int,
    visibility: int,
) -> list[dict[str, Any]]:
    keep = await retention(pool, tenant_id, queue)
    found: list[dict[str, Any]] = []
    async with open_channel() as channel:
        main = await channel.get_queue(amqp_name(tenant_id, queue), ensure=False)
        while len(found) < limit:
            got: list[AbstractIncomingMessage] = []
            while len(got) < limit - len(found):
                msg = await main.get(no_ack=False, fail=False)
                if msg is None:
                    break
                got.append(msg)
            if not got:
                break
            live = await sift(pool, channel, got, tenant_id, queue, keep)
            found.extend(await _take(pool, channel, live, tenant_id, queue, visibility))
    return found


async def _take(
    pool: asyncpg.Pool,
    channel: AbstractChannel,
    msgs: Sequence[AbstractIncomingMessage],
    tenant_id: str,
    queue: str,
    visibility: int,
) -> list[dict[str, Any]]:
    """Hide each message for ``visibility`` seconds under a fresh receipt handle: its
    copy in the invisible queue (confirmed), its receipt recorded, then the ack."""
    if not msgs:
        return []
    taken: list[dict[str, Any]] = []
    publishes = []
    for msg in msgs:
        seen = (msg.headers or {}).get(DEQUEUES)
        dequeues = (seen if isinstance(seen, int) else 0) + 1
        receipt = secrets.token_hex(16)
        headers = {**(msg.headers or {}), DEQUEUES: dequeues, RECEIPT: receipt}
        headers.pop("x-death", None)
        message_id = msg.message_id or uuid.uuid4().hex
        content_type = msg.content_type or "text/plain"
        copy = persistent_message(msg.body, content_type, message_id, headers)
        publishes.append(
            channel.default_exchange.publish(copy, routing_key=invisible_name(tenant_id, queue))
        )
        taken.append(
            {
                "message_id": message_id,
                "receipt_handle": receipt,
                "body": msg.body.decode("utf-8"),
                "content_type": content_type,
                "enqueue_time": datetime.fromtimestamp(enqueued_ms(msg) / 1000, UTC),
                "dequeue_count": dequeues,
            }
        )
    await asyncio.gather(*publishes)  # every copy confirmed before any original goes
    # The body is kept for a change of visibility, which publishes another copy.
    await pool.execute(
        "INSERT INTO notifier.queue_receipts (tenant_id, queue, message_id, receipt, "
        "visible_at, body, content_type, enqueued_ms, dequeues) "
        "SELECT $1, $2, u.m, u.r, now() + make_interval(secs => $5), u.b, u.c, u.e, u.d "
        "FROM unnest($3::text[], $4::text[], $6::bytea[], $7::text[], $8::bigint[], "
        "$9::int[]) AS u(m, r, b, c, e, d) "
        "ON CONFLICT (tenant_id, queue, message_id) DO UPDATE "
        "SET receipt = EXCLUDED.receipt, visible_at = EXCLUDED.visible_at, "
        "body = EXCLUDED.body, content_type = EXCLUDED.content_type, "
        "enqueued_ms = EXCLUDED.enqueued_ms, dequeues = EXCLUDED.dequeues",
        tenant_id,
        queue,
        [t["message_id"] for t in taken],
        [t["receipt_handle"] for t in taken],
        visibility,
        [m.body for m in msgs],
        [t["content_type"] for t in taken],
        [enqueued_ms(m) for m in msgs],
        [t["dequeue_count"] for t in taken],
    )
    for msg in msgs:
        await msg.ack()
    return taken


async def delete(pool: asyncpg.Pool, tenant_id: str, queue: str, receipt: str) -> None:
    if not await delete_many(pool, tenant_id, queue, [receipt]):
        raise NotFound(STALE)


async def delete_many(
    pool: asyncpg.Pool, tenant_id: str, queue: str, receipts: Sequence[str]
) -> set[str]:
    """Acknowledge by receipt handle; returns the handles that were current (the
    others are stale: deleted already, visible again, or received again since)."""
    async with pool.acquire() as conn, conn.transaction():
        # The row stays, stale and without its body: its receipt still tells the
        # message's older copies (superseded by a change of visibility) from its current.
        rows = await conn.fetch(
            "UPDATE notifier.queue_receipts SET visible_at = now(), body = NULL "
            "WHERE receipt = ANY($3::text[]) "
            "AND tenant_id = $1 AND queue = $2 AND visible_at > now() "
            "RETURNING receipt, message_id",
            tenant_id,
            queue,
            list(receipts),
        )
        await conn.execute(
            "INSERT INTO notifier.queue_tombstones (tenant_id, queue, message_id) "
            "SELECT $1, $2, unnest($3::text[]) ON CONFLICT DO NOTHING",
            tenant_id,
            queue,
            [row["message_id"] for row in rows],
        )
    return {row["receipt"] for row in rows}
