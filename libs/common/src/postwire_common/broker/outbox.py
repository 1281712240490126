"""Transactional outbox: what a request commits is published, even if the broker is down.

A handler writes its bus messages to the outbox table in the same transaction (or
statement) as its own rows, using :func:`outbox_columns`, commits, answers, and wakes
the relay. The relay takes pending rows in id order
with ``FOR UPDATE SKIP LOCKED`` (so replicas share the work), at most ``batch`` rows and
``max_bytes`` of bodies a round, publishes them all with
their confirms in flight together (rows carrying batches of the same kind merged into one
message, see :func:`merge`), and deletes the rows that were confirmed, all in one
transaction. A row whose publish failed stays and is tried again; a crash between
publish and delete publishes a row twice, which consumers absorb (they are idempotent).

The table (one per owning service) is::

    id bigserial primary key, exchange text, routing_key text, message_id text,
    body bytea, created_at timestamptz default now()
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
from collections.abc import Sequence

import asyncpg
from faststream.rabbit import RabbitBroker
from pydantic import BaseModel

from postwire_common.broker.publish import Outgoing, publish_all
from postwire_common.observability.metrics import OUTBOX_FAILURES, OUTBOX_PUBLISHED

log = logging.getLogger("postwire.outbox")


_LIST_HEAD = re.compile(rb'\{"[a-z_]+":\[')
MERGED_BYTES = 1024 * 1024  # largest bus message a merge makes


def merge(items: Sequence[Outgoing]) -> list[tuple[Outgoing, list[int]]]:
    """Bus messages for ``items``, each with the positions of the items it carries.

    Items for the same exchange and routing key whose bodies are one JSON list field
    (``{"events":[...]}``, as our batch models serialise) become one message whose list
    is the concatenation of theirs, in order, up to ``MERGED_BYTES``: under load one bus
    message then carries many requests' recipients or events, and the cost of the bus
    per recipient falls with the load. Anything else is published as it is.
    """
    groups: dict[tuple[str, str, bytes], list[int]] = {}
    result: list[tuple[Outgoing, list[int]]] = []
    for n, item in enumerate(items):
        body = item.body
        found = _LIST_HEAD.match(body) if isinstance(body, bytes) else None
        if found is None or not isinstance(body, bytes) or not body.endswith(b"]}"):
            result.append((item, [n]))
            continue
        groups.setdefault((item.exchange, item.routing_key, found.group()), []).append(n)
    for (exchange, routing_key, head), members in groups.items():
        parts: list[bytes] = []
        carried: list[int] = []
        size = 0
        for n in members:
            body = items[n].body
            assert isinstance(body, bytes)
            inner = body[len(head) : -2]
            if parts and size + len(inner) > MERGED_BYTES:
                result.append(
                    (_joined(exchange, routing_key, head, parts, items, carried), carried)
                )
                parts, carried, size = [], [], 0
            parts.append(inner)
            carried.append(n)
            size += len(inner) + 1
        result.append((_joined(exchange, routing_key, head, parts, items, carried), carried))
    return result


def _joined(
    exchange: str,
    routing_key: str,
    head: bytes,
    parts: list[bytes],
    items: Sequence[Outgoing],
    carried: list[int],
) -> Outgoing:
    if len(carried) == 1:
        return items[carried[0]]
    return Outgoing(exchange, routing_key, b"".join((head, b",".join(parts), b"]}")))


def _encode(body: bytes | BaseModel) -> bytes:
    return body.model_dump_json().encode() if isinstance(body, BaseModel) else body


def outbox_columns(
    items: Sequence[Outgoing],
) -> tuple[list[str], list[str], list[str | None], list[bytes]]:
    """``items`` as the four arrays an ``unnest`` insert into an outbox table takes
    (exchange, routing_key, message_id, body), for statements that write more."""
    return (
        [i.exchange for i in items],
        [i.routing_key for i in items],
        [i.message_id for i in items],
        [_encode(i.body) for i in items],
    )


# Lock the next rows, and return them up to a byte budget with how many were locked.
_FETCH = """
WITH locked AS (
    SELECT id, exchange, routing_key, message_id, body, octet_length(body) AS size
    FROM TABLE ORDER BY id LIMIT $1 FOR UPDATE SKIP LOCKED
), sized AS (
    SELECT *, sum(size) OVER (ORDER BY id) AS running, count(*) OVER () AS locked
    FROM locked
)
SELECT id, exchange, routing_key, message_id, body, locked FROM sized
WHERE running <= $2 OR running = size ORDER BY id
"""


class OutboxRelay:
    """Publishes a service's outbox rows; one per process, woken after each commit."""

    def __init__(
        self,
        pool: asyncpg.Pool,
        broker: RabbitBroker,
        table: str,
        *,
        batch: int = 500,
        max_bytes: int = 8 * 1024 * 1024,
        idle_interval: float = 1.0,
        linger: float = 0.005,
    ) -> None:
        self._pool = pool
        self._broker = broker
        self._table = table
        self._batch = batch
        self._max_bytes = max_bytes
        self._idle = idle_interval
        self._linger = linger
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._more = False
        self._fetch = _FETCH.replace("TABLE", table)

    def wake(self) -> None:
        self._wake.set()

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name=f"outbox-relay:{self._table}")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def _run(self) -> None:
        failures = 0
        while True:
            self._wake.clear()
            try:
                published, failed = await self.relay_once()
            except Exception as exc:  # the relay must outlive any one failure
                published, failed = 0, 1
                log.warning("outbox relay round failed", exc_info=exc)
            if failed:
                failures += 1
                await asyncio.sleep(min(10.0, 0.2 * 2 ** min(failures, 6)))
                continue
            failures = 0
            if published >= self._batch or self._more:
                continue  # more are waiting
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self._idle):
                    await self._wake.wait()
            if self._linger:
                # Commits come in bursts: a few milliseconds more make one round (and one
                # bus message per kind) of many of them instead of one round each.
                await asyncio.sleep(self._linger)

    async def relay_once(self) -> tuple[int, int]:
        """Publish one batch; return (published, failed)."""
        async with self._pool.acquire() as conn, conn.transaction():
            # Rows are locked with their sizes; bodies are returned up to the round's byte
            # budget (always at least one row), so memory is bounded either way.
            rows = await conn.fetch(self._fetch, self._batch, self._max_bytes)
            if not rows:
                return 0, 0
            locked = rows[0]["locked"]
            items = [
                Outgoing(r["exchange"], r["routing_key"], r["body"], r["message_id"]) for r in rows
            ]
            merged = merge(items)
            results = await publish_all(self._broker, [message for message, _ in merged])
            done = [
                rows[n]["id"]
                for (_, carried), error in zip(merged, results, strict=True)
                if error is None
                for n in carried
            ]
            failed = len(rows) - len(done)
            if done:
                await conn.execute(
                    f"DELETE FROM {self._table} WHERE id = ANY($1::bigint[])",  # noqa: S608
                    done,
                )
        self._more = len(rows) < locked
        OUTBOX_PUBLISHED.inc(len(done))
        if failed:
            OUTBOX_FAILURES.inc(failed)
            first = next(e for e in results if e is not None)
            log.warning(
                "outbox rows not confirmed by the broker; will retry",
                extra={"failed": failed, "error": repr(first)},
            )
        return len(done), failed
