"""ingest's SQL for sender domains: records, checks, DKIM keys, rotation, deletion.

DKIM private keys (``DKIM_KEY_COLUMNS``: the signing RSA key, a rotation's next one, the
Ed25519 key) are stored encrypted (``postwire_common.crypto``): encrypted on the way in,
decrypted by :meth:`DomainStore.dkim_private_key` and, for signing, by delivery only.
"""

from __future__ import annotations

from typing import Any

import asyncpg

from postwire_common.broker import topology
from postwire_common.broker.outbox import outbox_columns
from postwire_common.broker.publish import Outgoing
from postwire_common.crypto import Keyring
from postwire_common.errors import AlreadyExists, NotAvailable, NotFound
from postwire_common.schemas import DomainRemoved

DKIM_KEY_COLUMNS = ("dkim_private_key", "dkim_next_private_key", "dkim_ed25519_private_key")


class DomainStore:
    def __init__(self, pool: asyncpg.Pool, keyring: Keyring | None = None) -> None:
        self.pool = pool
        self._keyring_or_none = keyring

    @property
    def _keyring(self) -> Keyring:
        if self._keyring_or_none is None:
            raise RuntimeError("this store was made without a keyring")
        return self._keyring_or_none

    async def insert_domain(
        self,
        account_id: str,
        name: str,
        selector: str,
        private_pem: str,
        public_b64: str,
        max_domains: int,
        ed25519: tuple[str, str, str] | None = None,
    ) -> asyncpg.Record:
        """Add a domain with its RSA key and, with ``ed25519`` (selector, private PEM,
        public key), its Ed25519 key on."""
        ed_selector, ed_private, ed_public = ed25519 or (None, None, None)
        async with self.pool.acquire() as conn, conn.transaction():
            # Serialise domain creation per account so the limit holds under concurrency.
            await conn.execute("SELECT pg_advisory_xact_lock(hashtext($1))", account_id)
            count = await conn.fetchval(
                "SELECT count(*) FROM ingest.domains WHERE account_id = $1", account_id
            )
            if count >= max_domains:
                raise NotAvailable(f"an account can have at most {max_domains} domains")
            try:
                row = await conn.fetchrow(
                    "INSERT INTO ingest.domains "
                    "(account_id, name, dkim_selector, dkim_private_key, dkim_public_key, "
                    "dkim_ed25519, dkim_ed25519_selector, dkim_ed25519_private_key, "
                    "dkim_ed25519_public_key) "
                    "VALUES ($1, $2, $3, $4, $5, $6::text IS NOT NULL, $6, $7, $8) RETURNING *",
                    account_id,
                    name,
                    selector,
                    self._keyring.encrypt(private_pem),
                    public_b64,
                    ed_selector,
                    self._keyring.encrypt(ed_private) if ed_private else None,
                    ed_public,
                )
            except asyncpg.UniqueViolationError:
                raise AlreadyExists(f"domain {name} is already added") from None
        assert row is not None
        return row

    async def get_domain(self, account_id: str, name: str) -> asyncpg.Record:
        row = await self.pool.fetchrow(
            "SELECT * FROM ingest.domains WHERE account_id = $1 AND name = $2", account_id, name
        )
        if row is None:
            raise NotFound(f"no domain {name}")
        return row

    async def dkim_private_key(self, account_id: str, name: str) -> str:
        """The domain's DKIM private key (PEM), decrypted."""
        stored = await self.pool.fetchval(
            "SELECT dkim_private_key FROM ingest.domains WHERE account_id = $1 AND name = $2",
            account_id,
            name,
        )
        if stored is None:
            raise NotFound(f"no domain {name}")
        return self._keyring.decrypt(stored)

    async def rewrite_dkim_keys(self, *, rotate: bool) -> int:
        """Encrypt DKIM private keys (every column of ``DKIM_KEY_COLUMNS``) stored in
        plaintext (or, with ``rotate``, re-encrypt every one with the first key); returns
        how many were rewritten."""
        return sum([await self._rewrite_keys(column, rotate) for column in DKIM_KEY_COLUMNS])

    async def _rewrite_keys(self, column: str, rotate: bool) -> int:
        assert column in DKIM_KEY_COLUMNS  # a name from our own list, never from input
        rows = await self.pool.fetch(
            f"SELECT account_id, name, {column} AS key FROM ingest.domains "  # noqa: S608
            f"WHERE {column} IS NOT NULL AND ($1 OR {column} NOT LIKE 'fernet:%')",
            rotate,
        )
        changes = self._keyring.rewrites(
            (((r["account_id"], r["name"]), r["key"]) for r in rows), rotate=rotate
        )
        if not changes:
            return 0
        # A row changed meanwhile (deleted, or rewritten by another process) is left alone.
        updated = await self.pool.fetchval(
            f"WITH done AS (UPDATE ingest.domains d SET {column} = u.new "  # noqa: S608
            "FROM unnest($1::text[], $2::text[], $3::text[], $4::text[]) "
            "AS u(account_id, name, old, new) WHERE d.account_id = u.account_id "
            f"AND d.name = u.name AND d.{column} = u.old RETURNING 1) "
            "SELECT count(*) FROM done",
            [key[0] for key, _, _ in changes],
            [key[1] for key, _, _ in changes],
            [old for _, old, _ in changes],
            [new for _, _, new in changes],
        )
        return int(updated)

    async def list_domains(self, account_id: str) -> list[asyncpg.Record]:
        return list(
            await self.pool.fetch(
                "SELECT * FROM ingest.domains WHERE account_id = $1 ORDER BY created_at, name",
                account_id,
            )
        )

    async def delete_domain(self, account_id: str, name: str) -> None:
        """Delete the domain (its senders and keys go with it) and tell delivery, in one
        statement, to drop its copies of the keys."""
        notice = Outgoing(
            topology.OUTBOUND.name,
            topology.DOMAINS_KEY,
            DomainRemoved(tenant_id=account_id, domain=name),
        )
        deleted = await self.pool.fetchval(
            "WITH gone AS (DELETE FROM ingest.domains WHERE account_id = $1 AND name = $2 "
            "RETURNING name), told AS (INSERT INTO ingest.outbox (exchange, routing_key, "
            "message_id, body) SELECT * FROM unnest($3::text[], $4::text[], $5::text[], "
            "$6::bytea[]) WHERE EXISTS (SELECT 1 FROM gone)) SELECT name FROM gone",
            account_id,
            name,
            *outbox_columns([notice]),
        )
        if deleted is None:
            raise NotFound(f"no domain {name}")

    async def save_domain_check(
        self,
        account_id: str,
        name: str,
        record_status: dict[str, str],
        record_found: dict[str, Any],
        state: str,
        ed25519_selector: str | None = None,
    ) -> tuple[str, asyncpg.Record] | None:
        """Store a check's outcome; (the state before, the row), None if the domain is
        gone. An operator-verified domain keeps its state. ``ed25519_selector``: the
        Ed25519 key the check was of; if another replaced it meanwhile, its record's
        outcome is dropped (the new key must verify first)."""
        async with self.pool.acquire() as conn, conn.transaction():
            before = await conn.fetchval(
                "SELECT status FROM ingest.domains WHERE account_id = $1 AND name = $2 FOR UPDATE",
                account_id,
                name,
            )
            if before is None:
                return None
            row = await conn.fetchrow(
                "UPDATE ingest.domains SET record_status = CASE WHEN dkim_ed25519_selector "
                "IS NOT DISTINCT FROM $6 THEN $3 ELSE $3::jsonb - 'dkim_ed25519' END, "
                "record_found = CASE WHEN dkim_ed25519_selector IS NOT DISTINCT FROM $6 "
                "THEN $4 ELSE $4::jsonb - 'dkim_ed25519' END, "
                "checked_at = now(), status = CASE WHEN overridden THEN status ELSE $5 END, "
                "verified_at = CASE WHEN $5 = 'verified' AND status <> 'verified' THEN now() "
                "ELSE verified_at END WHERE account_id = $1 AND name = $2 RETURNING *",
                account_id,
                name,
                record_status,
                record_found,
                state,
                ed25519_selector,
            )
        assert row is not None
        return str(before), row

    async def domains_to_recheck(self) -> list[asyncpg.Record]:
        """Domains that may send, checked longest ago first (operator overrides aside)."""
        return list(
            await self.pool.fetch(
                "SELECT account_id, name FROM ingest.domains WHERE status <> 'unverified' "
                "AND NOT overridden ORDER BY checked_at NULLS FIRST"
            )
        )

    async def start_dkim_rotation(
        self,
        account_id: str,
        name: str,
        selector: str,
        private_pem: str,
        public_b64: str,
        ed25519: tuple[str, str, str] | None = None,
    ) -> asyncpg.Record:
        """A new RSA key waits in ``dkim_next_*``; with ``ed25519`` (selector, private PEM,
        public key), a domain with Ed25519 on has that key replaced at once (it signs
        again once its new record verifies)."""
        ed_selector, ed_private, ed_public = ed25519 or (None, None, None)
        row = await self.pool.fetchrow(
            "UPDATE ingest.domains SET dkim_next_selector = $3, dkim_next_private_key = $4, "
            "dkim_next_public_key = $5, "
            "dkim_ed25519_selector = CASE WHEN dkim_ed25519 AND $6::text IS NOT NULL "
            "THEN $6 ELSE dkim_ed25519_selector END, "
            "dkim_ed25519_private_key = CASE WHEN dkim_ed25519 AND $6::text IS NOT NULL "
            "THEN $7 ELSE dkim_ed25519_private_key END, "
            "dkim_ed25519_public_key = CASE WHEN dkim_ed25519 AND $6::text IS NOT NULL "
            "THEN $8 ELSE dkim_ed25519_public_key END, "
            "record_status = CASE WHEN dkim_ed25519 AND $6::text IS NOT NULL "
            "THEN record_status - 'dkim_ed25519' ELSE record_status END, "
            "record_found = CASE WHEN dkim_ed25519 AND $6::text IS NOT NULL "
            "THEN record_found - 'dkim_ed25519' ELSE record_found END "
            "WHERE account_id = $1 AND name = $2 RETURNING *",
            account_id,
            name,
            selector,
            self._keyring.encrypt(private_pem),
            public_b64,
            ed_selector,
            self._keyring.encrypt(ed_private) if ed_private else None,
            ed_public,
        )
        if row is None:
            raise NotFound(f"no domain {name}")
        return row

    async def set_dkim_ed25519(
        self, account_id: str, name: str, key: tuple[str, str, str] | None
    ) -> asyncpg.Record:
        """Turn Ed25519 signing on with ``key`` (selector, private PEM, public key; a key
        the domain already has is kept instead), or off (``None``: the key is kept, its
        record's check forgotten). It signs once its record verifies."""
        if key is None:
            row = await self.pool.fetchrow(
                "UPDATE ingest.domains SET dkim_ed25519 = false, "
                "record_status = record_status - 'dkim_ed25519', "
                "record_found = record_found - 'dkim_ed25519' "
                "WHERE account_id = $1 AND name = $2 RETURNING *",
                account_id,
                name,
            )
        else:
            selector, private_pem, public_b64 = key
            row = await self.pool.fetchrow(
                "UPDATE ingest.domains SET dkim_ed25519 = true, "
                "dkim_ed25519_selector = coalesce(dkim_ed25519_selector, $3), "
                "dkim_ed25519_private_key = coalesce(dkim_ed25519_private_key, $4), "
                "dkim_ed25519_public_key = coalesce(dkim_ed25519_public_key, $5) "
                "WHERE account_id = $1 AND name = $2 RETURNING *",
                account_id,
                name,
                selector,
                self._keyring.encrypt(private_pem),
                public_b64,
            )
        if row is None:
            raise NotFound(f"no domain {name}")
        return row

    async def finish_dkim_rotation(self, account_id: str, name: str, selector: str) -> None:
        """The new key verified in DNS: it signs from now on (the old one is dropped)."""
        await self.pool.execute(
            "UPDATE ingest.domains SET dkim_selector = dkim_next_selector, "
            "dkim_private_key = dkim_next_private_key, dkim_public_key = dkim_next_public_key, "
            "dkim_next_selector = NULL, dkim_next_private_key = NULL, "
            "dkim_next_public_key = NULL WHERE account_id = $1 AND name = $2 "
            "AND dkim_next_selector = $3",
            account_id,
            name,
            selector,
        )

    async def mark_domain_verified(self, name: str, account_id: str | None) -> list[str]:
        """Operator override; returns the account ids whose domain was marked."""
        rows = await self.pool.fetch(
            "UPDATE ingest.domains SET status = 'verified', overridden = true, "
            "verified_at = now() "
            "WHERE name = $1 AND ($2::text IS NULL OR account_id = $2) RETURNING account_id",
            name,
            account_id,
        )
        return [r["account_id"] for r in rows]

    async def domain_accounts(self, name: str) -> list[str]:
        rows = await self.pool.fetch("SELECT account_id FROM ingest.domains WHERE name = $1", name)
        return [r["account_id"] for r in rows]
