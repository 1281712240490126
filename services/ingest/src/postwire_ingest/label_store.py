"""The SQL of accounts' labels (table ``ingest.labels``), and nowhere else."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import asyncpg

from postwire_common.errors import AlreadyExists, NotAvailable, NotFound
from postwire_common.ids import new_id


class LabelStore:
    def __init__(self, pool: asyncpg.Pool) -> None:
        self.pool = pool

    async def create(
        self, account_id: str, name: str, max_labels: int, *, existing_ok: bool = False
    ) -> dict[str, Any]:
        """A new label (``existing_ok``: or the one of that name), while the account has
        fewer than ``max_labels``."""
        async with self.pool.acquire() as conn, conn.transaction():
            # Serialise creations per account so the limit holds under concurrency.
            await conn.execute(
                "SELECT pg_advisory_xact_lock(hashtext('labels:' || $1))", account_id
            )
            found = await conn.fetchrow(
                "SELECT id, name, created_at FROM ingest.labels "
                "WHERE account_id = $1 AND name = $2",
                account_id,
                name,
            )
            if found is not None:
                if existing_ok:
                    return dict(found)
                raise AlreadyExists(f"label {name} exists")
            count = await conn.fetchval(
                "SELECT count(*) FROM ingest.labels WHERE account_id = $1", account_id
            )
            if count >= max_labels:
                raise NotAvailable(f"an account can have at most {max_labels} labels")
            row = await conn.fetchrow(
                "INSERT INTO ingest.labels (account_id, id, name) VALUES ($1, $2, $3) "
                "RETURNING id, name, created_at",
                account_id,
                new_id(),
                name,
            )
        assert row is not None
        return dict(row)

    async def list(
        self, account_id: str, *, after: tuple[datetime, str] | None, limit: int
    ) -> list[dict[str, Any]]:
        """Labels oldest first, ``limit`` after the (created_at, id) ``after``. Ids made in
        the same millisecond do not sort by creation, so the time orders."""
        rows = await self.pool.fetch(
            "SELECT id, name, created_at FROM ingest.labels WHERE account_id = $1 "
            "AND ($2::timestamptz IS NULL OR (created_at, id) > ($2, $3)) "
            "ORDER BY created_at, id LIMIT $4",
            account_id,
            after[0] if after else None,
            after[1] if after else None,
            limit,
        )
        return [dict(r) for r in rows]

    async def get(self, account_id: str, label_id: str) -> dict[str, Any]:
        row = await self.pool.fetchrow(
            "SELECT id, name, created_at FROM ingest.labels WHERE account_id = $1 AND id = $2",
            account_id,
            label_id,
        )
        if row is None:
            raise NotFound(f"no label {label_id}")
        return dict(row)

    async def delete(self, account_id: str, label_id: str) -> None:
        deleted = await self.pool.fetchval(
            "DELETE FROM ingest.labels WHERE account_id = $1 AND id = $2 RETURNING id",
            account_id,
            label_id,
        )
        if deleted is None:
            raise NotFound(f"no label {label_id}")
