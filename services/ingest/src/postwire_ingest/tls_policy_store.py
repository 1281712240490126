"""The SQL of accounts' TLS policies (table ``ingest.tls_policies``), and nowhere else."""

from __future__ import annotations

from types import MappingProxyType
from typing import Any

import asyncpg

from postwire_common.errors import NotAvailable, NotFound
from postwire_common.schemas import TlsMode


class TlsPolicyStore:
    def __init__(self, pool: asyncpg.Pool) -> None:
        self.pool = pool

    async def put_policy(
        self, account_id: str, domain: str, mode: TlsMode, max_rules: int
    ) -> dict[str, Any]:
        """Add or replace the account's rule for ``domain``; a new one only while the
        account has fewer than ``max_rules``."""
        async with self.pool.acquire() as conn, conn.transaction():
            # Serialise changes per account so the limit holds under concurrency.
            await conn.execute(
                "SELECT pg_advisory_xact_lock(hashtext('tls_policies:' || $1))", account_id
            )
            count = await conn.fetchval(
                "SELECT count(*) FILTER (WHERE domain <> $2) FROM ingest.tls_policies "
                "WHERE account_id = $1",
                account_id,
                domain,
            )
            if count >= max_rules:
                raise NotAvailable(f"an account can have at most {max_rules} TLS policies")
            row = await conn.fetchrow(
                "INSERT INTO ingest.tls_policies (account_id, domain, mode) VALUES ($1, $2, $3) "
                "ON CONFLICT (account_id, domain) DO UPDATE SET mode = EXCLUDED.mode, "
                "updated_at = now() RETURNING domain, mode, updated_at",
                account_id,
                domain,
                mode.value,
            )
        assert row is not None
        return dict(row)

    async def list_policies(self, account_id: str) -> list[dict[str, Any]]:
        rows = await self.pool.fetch(
            "SELECT domain, mode, updated_at FROM ingest.tls_policies WHERE account_id = $1 "
            "ORDER BY domain",
            account_id,
        )
        return [dict(r) for r in rows]

    async def get_policy(self, account_id: str, domain: str) -> dict[str, Any]:
        row = await self.pool.fetchrow(
            "SELECT domain, mode, updated_at FROM ingest.tls_policies "
            "WHERE account_id = $1 AND domain = $2",
            account_id,
            domain,
        )
        if row is None:
            raise NotFound(f"no TLS policy for {domain}")
        return dict(row)

    async def delete_policy(self, account_id: str, domain: str) -> None:
        deleted = await self.pool.fetchval(
            "DELETE FROM ingest.tls_policies WHERE account_id = $1 AND domain = $2 "
            "RETURNING domain",
            account_id,
            domain,
        )
        if deleted is None:
            raise NotFound(f"no TLS policy for {domain}")

    async def modes(self, account_id: str) -> MappingProxyType[str, TlsMode]:
        """The account's rules as ``domain -> mode`` (``*`` included)."""
        rows = await self.pool.fetch(
            "SELECT domain, mode FROM ingest.tls_policies WHERE account_id = $1", account_id
        )
        return MappingProxyType({r["domain"]: TlsMode(r["mode"]) for r in rows})
