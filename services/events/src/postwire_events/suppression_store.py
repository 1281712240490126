"""The SQL of suppression lists (``events.suppressions``) and of their announcements in
``events.outbox``: a change and the message telling ingest of it commit together."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any

import asyncpg

from postwire_common.broker.outbox import outbox_columns
from postwire_common.errors import NotFound
from postwire_common.schemas import SuppressionChange, SuppressionReason
from postwire_events.suppressions import Suppression, announce

OUTBOX_TABLE = "events.outbox"

_ADD = """
INSERT INTO events.suppressions (tenant_id, address, reason, source_env_id, created_at)
SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::timestamptz[])
ON CONFLICT (tenant_id, address) DO NOTHING
RETURNING tenant_id, address, reason, created_at
"""

_OUTBOX = (
    "INSERT INTO events.outbox (exchange, routing_key, message_id, body) "
    "SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::bytea[])"
)


async def add(conn: asyncpg.Connection, items: Sequence[Suppression]) -> int:
    """Add what is not on its list yet, and announce it; how many were added."""
    if not items:
        return 0
    unique = {(s.tenant_id, s.address): s for s in reversed(items)}.values()  # first wins
    rows = await conn.fetch(
        _ADD,
        [s.tenant_id for s in unique],
        [s.address for s in unique],
        [s.reason.value for s in unique],
        [s.source_env_id for s in unique],
        [s.time for s in unique],
    )
    changes = [
        SuppressionChange(
            tenant_id=r["tenant_id"],
            address=r["address"],
            suppressed=True,
            reason=SuppressionReason(r["reason"]),
            time=r["created_at"],
        )
        for r in rows
    ]
    await _announce(conn, changes)
    return len(rows)


async def _announce(conn: asyncpg.Connection, changes: Sequence[SuppressionChange]) -> None:
    outgoing = announce(changes)
    if outgoing:
        await conn.execute(_OUTBOX, *outbox_columns(outgoing))


class SuppressionStore:
    def __init__(self, pool: asyncpg.Pool, announced: Callable[[], None] = lambda: None) -> None:
        self.pool = pool
        self.announced = announced  # wakes the outbox relay after a commit

    async def add(self, item: Suppression) -> dict[str, Any]:
        """Add ``item`` (or keep the entry there is); the entry."""
        async with self.pool.acquire() as conn, conn.transaction():
            added = await add(conn, [item])
            row = await conn.fetchrow(
                "SELECT * FROM events.suppressions WHERE tenant_id = $1 AND address = $2",
                item.tenant_id,
                item.address,
            )
        assert row is not None
        if added:
            self.announced()
        return dict(row)

    async def remove(self, tenant_id: str, address: str, now: datetime) -> None:
        async with self.pool.acquire() as conn, conn.transaction():
            gone = await conn.fetchval(
                "DELETE FROM events.suppressions WHERE tenant_id = $1 AND address = $2 "
                "RETURNING address",
                tenant_id,
                address,
            )
            if gone is None:
                raise NotFound(f"{address} is not on the suppression list")
            change = SuppressionChange(
                tenant_id=tenant_id, address=address, suppressed=False, time=now
            )
            await _announce(conn, [change])
        self.announced()

    async def list(
        self,
        tenant_id: str,
        *,
        reason: SuppressionReason | None,
        address: str | None,
        limit: int,
        after: tuple[datetime, str] | None,
    ) -> list[dict[str, Any]]:
        """Newest first; ``after`` is the (created_at, address) of the last row seen."""
        rows = await self.pool.fetch(
            "SELECT * FROM events.suppressions WHERE tenant_id = $1 "
            "AND ($2::text IS NULL OR reason = $2) "
            "AND ($3::text IS NULL OR strpos(address, lower($3)) > 0) "
            "AND ($4::timestamptz IS NULL OR (created_at, address) < ($4, $5)) "
            "ORDER BY created_at DESC, address DESC LIMIT $6",
            tenant_id,
            reason.value if reason else None,
            address,
            after[0] if after else None,
            after[1] if after else None,
            limit,
        )
        return [dict(r) for r in rows]
