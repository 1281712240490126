"""Changing a received message's visibility (MNS's ChangeMessageVisibility): the receipt
row in PostgreSQL, not the copy in the broker, says when the message is visible again.

::

    change(receipt, vt) ── row: receipt → fresh one, visible_at = now + vt, superseded + 1
                        └─ new copy (confirmed, header x-postwire-receipt = fresh one):
                             vt > 0 ─▶ invisible queue, expiration vt (the queue's TTL caps it)
                             vt = 0 ─▶ the account queue, visible at once
    a copy comes back (sift) ── :func:`fate`:
        its receipt is not the row's  ─▶ superseded: dropped, not counted
        the row's, visible_at ahead   ─▶ hidden again for the time left (capped the same)
        else                          ─▶ as before: deleted, past retention, or received

A copy in the broker cannot be taken back, so a shorter visibility publishes another
copy (from the body the row keeps) and the older one is dropped when it comes back; a
longer one is served the same way, and a copy back before its time is hidden again.
RabbitMQ expires messages of a quorum queue at its head only, so a shortened copy may be
visible somewhat later than asked (behind an older copy), never earlier and never later
than the queue's visibility timeout after the change. AMQP consumers of the account
queue do not pass the receipts: they may see a superseded copy too.
"""

from __future__ import annotations

import enum
import secrets
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

import asyncpg
from aio_pika.abc import AbstractChannel, AbstractIncomingMessage

from postwire_common.errors import NotFound
from postwire_notifier.queue_topology import (
    DEQUEUES,
    ENQUEUED,
    QUEUE,
    RECEIPT,
    TENANT,
    amqp_name,
    invisible_name,
    persistent_message,
)

__all__ = ["Fate", "change", "fate", "hide_again"]

STALE = (
    "no message with this receipt handle (deleted already, visible again, or received "
    "again since: use the newest handle)"
)


class Fate(enum.Enum):
    """What becomes of a copy taken from an account queue."""

    SUPERSEDED = "superseded"  # an older copy of a message whose visibility changed
    DELETED = "deleted"  # deleted by handle (tombstoned)
    EXPIRED = "expired"  # past the queue's retention: counted in ``dropped``
    HIDDEN = "hidden"  # its visibility was extended: hidden again for the time left
    LIVE = "live"  # handed to the receiver


def fate(
    header: object, current: str | None, wait_ms: int, *, tombstoned: bool, expired: bool
) -> Fate:
    """A copy carrying receipt ``header`` (absent on copies never received, or made
    before receipts were carried), whose message's receipt row holds ``current`` (None:
    no row) and is visible again in ``wait_ms``."""
    if current is not None and isinstance(header, str) and header != current:
        return Fate.SUPERSEDED
    if tombstoned:
        return Fate.DELETED
    if expired:
        return Fate.EXPIRED
    if current is not None and wait_ms > 0:
        return Fate.HIDDEN
    return Fate.LIVE


async def hide_again(
    channel: AbstractChannel,
    msg: AbstractIncomingMessage,
    tenant_id: str,
    queue: str,
    wait_ms: int,
) -> None:
    """Put a copy that came back early into the invisible queue again (confirmed), for
    ``wait_ms`` or the queue's visibility timeout, whichever is shorter; then ack it."""
    headers = {k: v for k, v in (msg.headers or {}).items() if not k.startswith("x-death")}
    copy = persistent_message(
        msg.body,
        msg.content_type or "text/plain",
        msg.message_id or "",
        headers,
        timedelta(milliseconds=wait_ms),
    )
    await channel.default_exchange.publish(copy, routing_key=invisible_name(tenant_id, queue))
    await msg.ack()


async def change(
    pool: asyncpg.Pool,
    open_channel: Callable[[], Any],
    tenant_id: str,
    queue: str,
    receipt: str,
    seconds: int,
) -> tuple[str, datetime]:
    """Make a received message visible again ``seconds`` from now: its new receipt
    handle (the given one is stale from now on) and when it is visible. ``NotFound``
    when ``receipt`` is not the message's current, invisible one."""
    fresh = secrets.token_hex(16)
    async with pool.acquire() as conn, conn.transaction():
        # The row stays locked until the new copy is confirmed: should the publish
        # fail, the old receipt and its copy stay current and nothing is lost.
        row = await conn.fetchrow(
            "UPDATE notifier.queue_receipts SET receipt = $4, "
            "visible_at = now() + make_interval(secs => $5), "
            "superseded = superseded + (body IS NOT NULL)::int "
            "WHERE tenant_id = $1 AND queue = $2 AND receipt = $3 AND visible_at > now() "
            "RETURNING message_id, visible_at, body, content_type, enqueued_ms, dequeues",
            tenant_id,
            queue,
            receipt,
            fresh,
            seconds,
        )
        if row is None:
            raise NotFound(STALE)
        if row["body"] is not None:  # rows from before bodies were kept: the copy stays
            await _publish(open_channel, tenant_id, queue, fresh, seconds, row)
    return fresh, row["visible_at"]


async def _publish(
    open_channel: Callable[[], Any],
    tenant_id: str,
    queue: str,
    receipt: str,
    seconds: int,
    row: asyncpg.Record,
) -> None:
    headers = {
        TENANT: tenant_id,
        QUEUE: queue,
        ENQUEUED: row["enqueued_ms"],
        DEQUEUES: row["dequeues"],
        RECEIPT: receipt,
    }
    expiration = timedelta(seconds=seconds) if seconds else None
    copy = persistent_message(
        row["body"], row["content_type"], row["message_id"], headers, expiration
    )
    target = invisible_name(tenant_id, queue) if seconds else amqp_name(tenant_id, queue)
    async with open_channel() as channel:
        await channel.default_exchange.publish(copy, routing_key=target)
