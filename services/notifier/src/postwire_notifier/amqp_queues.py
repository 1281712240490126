"""Account queues as real RabbitMQ queues, with MNS's receive semantics over HTTP.

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

- **Enqueue** publishes with publisher confirms, once per dedup key: the keys already
  published are rows of ``notifier.queue_seen``, inserted in the transaction that
  publishes (a crash between the confirm and the commit can publish one twice:
  at-least-once). Oversize messages and queues that are gone are skipped.
- **Receive** takes up to ``limit`` messages with ``basic.get``; each is copied with
  ``dequeue_count + 1`` into the invisible queue, its fresh receipt handle (128 random
  bits) recorded in ``notifier.queue_receipts``, then acked. Not deleted in time, the
  copy is dead-lettered back into the account queue and is visible again.
- **Delete** by handle removes the receipt and leaves a tombstone: the copy is dropped
  (not counted) when it comes back. A handle is stale (``not_found``) once its message
  was received again, deleted, or its visibility timeout passed.
- **Retention**: the queue's TTL dead-letters expired messages into
  ``postwire.acct-expired``; the notifier counts them in ``dropped``. A message that
  re-enters the queue from the invisible queue starts a new TTL, so receive and the
  counts also drop (and count) messages whose enqueue time is past retention.
- **Counts**: ``depth`` and ``in_flight`` come from the broker's ready counts and the
  live receipts; ``oldest_age`` peeks at the head (``basic.get`` + requeue: quorum
  queues hand a returned message out first), so it is the oldest *visible* message's.
- **AMQP**: an account may consume its queue directly (``broker_users``); messages it
  takes never pass the receipts, and a message received over HTTP comes back to AMQP
  consumers too when its visibility timeout passes.

Quorum queues support queue TTL and dead-lettering since RabbitMQ 3.10; dead-lettering
is at-most-once there, so a dropped count can be one short after a broker failure.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import aio_pika
import asyncpg
from aio_pika.abc import AbstractChannel, AbstractIncomingMessage, AbstractRobustConnection

from postwire_common.errors import NotFound

log = logging.getLogger("postwire.notifier.queues")

EXCHANGE = "postwire.acct"
EXPIRED = "postwire.acct-expired"
TENANT = "x-postwire-account"
QUEUE = "x-postwire-queue"
ENQUEUED = "x-postwire-enqueued-ms"
DEQUEUES = "x-postwire-dequeue-count"
STALE = (
    "no message with this receipt handle (deleted already, visible again, or received "
    "again since: use the newest handle)"
)


@dataclass(frozen=True, slots=True)
class Enqueue:
    tenant_id: str
    queue: str
    dedup: str
    body: bytes
    content_type: str


def amqp_name(tenant_id: str, queue: str) -> str:
    """The RabbitMQ queue an account consumes over AMQP."""
    return f"{EXCHANGE}.{tenant_id}.{queue}"


def invisible_name(tenant_id: str, queue: str) -> str:
    return f"{EXCHANGE}-invisible.{tenant_id}.{queue}"


def routing_key(tenant_id: str, queue: str) -> str:
    return f"{tenant_id}.{queue}"


def _message(body: bytes, content_type: str, message_id: str, headers: dict[str, Any]) -> Any:
    return aio_pika.Message(
        body,
        content_type=content_type,
        message_id=message_id,
        headers=headers,
        delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
    )


def _enqueued_ms(message: AbstractIncomingMessage) -> int:
    value = (message.headers or {}).get(ENQUEUED)
    return int(value) if isinstance(value, int | float | str) else int(time.time() * 1000)


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
        await channel.declare_exchange(EXCHANGE, aio_pika.ExchangeType.DIRECT, durable=True)
        expired = await channel.declare_queue(
            EXPIRED, durable=True, arguments={"x-queue-type": "quorum"}
        )
        for row in await self.pool.fetch(
            "SELECT tenant_id, name, visibility_timeout, message_retention FROM notifier.queues"
        ):
            await self.declare(row["tenant_id"], row["name"], *row[2:])
        await channel.set_qos(prefetch_count=32)
        await expired.consume(self._count_expired)

    async def stop(self) -> None:
        if self._connection is not None:
            await self._connection.close()

    def _channel(self) -> Any:
        assert self._connection is not None, "AmqpQueues.start() first"
        return self._connection.channel(publisher_confirms=True)

    async def declare(self, tenant_id: str, queue: str, visibility: int, retention: int) -> None:
        async with self._channel() as channel:
            main = await channel.declare_queue(
                amqp_name(tenant_id, queue),
                durable=True,
                arguments={
                    "x-queue-type": "quorum",
                    "x-message-ttl": retention * 1000,
                    "x-dead-letter-exchange": "",
                    "x-dead-letter-routing-key": EXPIRED,
                },
            )
            await main.bind(EXCHANGE, routing_key=routing_key(tenant_id, queue))
            await channel.declare_queue(
                invisible_name(tenant_id, queue),
                durable=True,
                arguments={
                    "x-queue-type": "quorum",
                    "x-message-ttl": visibility * 1000,
                    "x-dead-letter-exchange": EXCHANGE,
                    "x-dead-letter-routing-key": routing_key(tenant_id, queue),
                },
            )

    async def remove(self, tenant_id: str, queue: str) -> None:
        async with self._channel() as channel:
            await channel.queue_delete(amqp_name(tenant_id, queue))
            await channel.queue_delete(invisible_name(tenant_id, queue))

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
                message = _message(m.body, m.content_type, uuid.uuid4().hex, headers)
                publishes.append(
                    exchange.publish(message, routing_key=routing_key(m.tenant_id, m.queue))
                )
            await asyncio.gather(*publishes)  # every confirm before the keys commit
        return len(rows)

    # receive and delete ------------------------------------------------------------

    async def _retention(self, tenant_id: str, queue: str) -> int:
        retention = await self.pool.fetchval(
            "SELECT message_retention FROM notifier.queues WHERE tenant_id = $1 AND name = $2",
            tenant_id,
            queue,
        )
        if retention is None:
            raise NotFound(f"no queue {queue}")
        return int(retention)

    async def _sift(
        self, got: Sequence[AbstractIncomingMessage], tenant_id: str, queue: str, keep: int
    ) -> list[AbstractIncomingMessage]:
        """Drop messages deleted by handle (not counted) or past retention (counted), in
        one statement for the batch; the others are returned."""
        tombstoned = {
            row["message_id"]
            for row in await self.pool.fetch(
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
            elif _enqueued_ms(msg) < cutoff:
                await self._count_dropped(tenant_id, queue, msg.message_id or "")
                await msg.ack()
            else:
                live.append(msg)
        return live

    async def receive(
        self, tenant_id: str, queue: str, limit: int, visibility: int
    ) -> list[dict[str, Any]]:
        keep = await self._retention(tenant_id, queue)
        found: list[dict[str, Any]] = []
        async with self._channel() as channel:
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
                live = await self._sift(got, tenant_id, queue, keep)
                found.extend(await self._take(channel, live, tenant_id, queue, visibility))
        return found

    async def _take(
        self,
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
            headers = {**(msg.headers or {}), DEQUEUES: dequeues}
            headers.pop("x-death", None)
            message_id = msg.message_id or uuid.uuid4().hex
            content_type = msg.content_type or "text/plain"
            copy = _message(msg.body, content_type, message_id, headers)
            publishes.append(
                channel.default_exchange.publish(copy, routing_key=invisible_name(tenant_id, queue))
            )
            taken.append(
                {
                    "message_id": message_id,
                    "receipt_handle": secrets.token_hex(16),
                    "body": msg.body.decode("utf-8"),
                    "content_type": content_type,
                    "enqueue_time": datetime.fromtimestamp(_enqueued_ms(msg) / 1000, UTC),
                    "dequeue_count": dequeues,
                }
            )
        await asyncio.gather(*publishes)  # every copy confirmed before any original goes
        await self.pool.execute(
            "INSERT INTO notifier.queue_receipts (tenant_id, queue, message_id, receipt, "
            "visible_at) SELECT $1, $2, u.m, u.r, now() + make_interval(secs => $5) "
            "FROM unnest($3::text[], $4::text[]) AS u(m, r) "
            "ON CONFLICT (tenant_id, queue, message_id) DO UPDATE "
            "SET receipt = EXCLUDED.receipt, visible_at = EXCLUDED.visible_at",
            tenant_id,
            queue,
            [t["message_id"] for t in taken],
            [t["receipt_handle"] for t in taken],
            visibility,
        )
        for msg in msgs:
            await msg.ack()
        return taken

    async def delete(self, tenant_id: str, queue: str, receipt: str) -> None:
        if not await self.delete_many(tenant_id, queue, [receipt]):
            raise NotFound(STALE)

    async def delete_many(self, tenant_id: str, queue: str, receipts: Sequence[str]) -> set[str]:
        """Acknowledge by receipt handle; returns the handles that were current (the
        others are stale: deleted already, visible again, or received again since)."""
        async with self.pool.acquire() as conn, conn.transaction():
            rows = await conn.fetch(
                "DELETE FROM notifier.queue_receipts WHERE receipt = ANY($3::text[]) "
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

    # counts, retention -------------------------------------------------------------

    async def counts(self, tenant_id: str, queue: str) -> dict[str, Any]:
        """Visible messages, messages in flight, and the oldest visible message's age (s)."""
        keep = await self._retention(tenant_id, queue)
        async with self._channel() as channel:
            # Counted before the peek: a requeued message shows in the count only later.
            main = await channel.declare_queue(amqp_name(tenant_id, queue), passive=True)
            hidden = await channel.declare_queue(invisible_name(tenant_id, queue), passive=True)
            oldest, removed = await self._head(channel, tenant_id, queue, keep)
        ready = (main.declaration_result.message_count or 0) - removed
        waiting = hidden.declaration_result.message_count or 0
        row = await self.pool.fetchrow(
            "SELECT (SELECT count(*) FROM notifier.queue_receipts WHERE tenant_id = $1 "
            "AND queue = $2 AND visible_at > now()) AS in_flight, "
            "(SELECT count(*) FROM notifier.queue_tombstones WHERE tenant_id = $1 "
            "AND queue = $2) AS deleted",
            tenant_id,
            queue,
        )
        in_flight = min(int(row["in_flight"]), waiting)
        return {
            "depth": max(0, ready + waiting - in_flight - int(row["deleted"])),
            "in_flight": in_flight,
            "oldest_age": 0.0 if oldest is None else max(0.0, time.time() - oldest / 1000),
        }

    async def _head(
        self, channel: AbstractChannel, tenant_id: str, queue: str, keep: int
    ) -> tuple[int | None, int]:
        """Drop deleted and expired messages at the head: the first other's enqueue time,
        and how many were dropped."""
        main = await channel.get_queue(amqp_name(tenant_id, queue), ensure=False)
        removed = 0
        while True:
            msg = await main.get(no_ack=False, fail=False)
            if msg is None:
                return None, removed
            if await self._sift([msg], tenant_id, queue, keep):
                await msg.nack(requeue=True)
                return _enqueued_ms(msg), removed
            removed += 1

    async def _count_dropped(self, tenant_id: str, queue: str, message_id: str) -> None:
        await self.pool.execute(
            "WITH r AS (DELETE FROM notifier.queue_receipts WHERE tenant_id = $1 AND queue = $2 "
            "AND message_id = $3) "
            "UPDATE notifier.queues SET dropped = dropped + 1 WHERE tenant_id = $1 AND name = $2",
            tenant_id,
            queue,
            message_id,
        )

    async def _count_expired(self, msg: AbstractIncomingMessage) -> None:
        """A message past retention, dead-lettered by its queue: counted unless deleted."""
        headers = msg.headers or {}
        tenant_id, queue = str(headers.get(TENANT, "")), str(headers.get(QUEUE, ""))
        try:
            deleted = await self.pool.fetchval(
                "DELETE FROM notifier.queue_tombstones WHERE tenant_id = $1 AND queue = $2 "
                "AND message_id = $3 RETURNING 1",
                tenant_id,
                queue,
                msg.message_id,
            )
            if deleted is None:
                await self._count_dropped(tenant_id, queue, msg.message_id or "")
        except Exception as exc:  # PostgreSQL away: the broker hands it out again
            log.warning("expired message not counted yet", extra={"error": repr(exc)})
            await msg.nack(requeue=True)
            return
        await msg.ack()

    async def purge(self) -> None:
        """Forget dedup keys, receipts and tombstones older than their queue's retention."""
        for table, column in (
            ("queue_seen", "seen_at"),
            ("queue_receipts", "visible_at"),
            ("queue_tombstones", "deleted_at"),
        ):
            await self.pool.execute(
                f"DELETE FROM notifier.{table} t USING notifier.queues q "  # noqa: S608
                "WHERE t.tenant_id = q.tenant_id AND t.queue = q.name "
                f"AND t.{column} < now() - make_interval(secs => q.message_retention * 2)"
            )
