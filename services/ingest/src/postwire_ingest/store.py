"""ingest's SQL, and nowhere else. Tables live in the ``ingest`` schema; the sender
domains' statements are in ``domain_store.py``, the TLS policies' in
``tls_policy_store.py``."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import asyncpg

from postwire_common.broker.outbox import outbox_columns
from postwire_common.broker.publish import Outgoing
from postwire_common.content import StoredContent, content_columns, insert_cte
from postwire_common.errors import AlreadyExists, NotFound
from postwire_common.identity import hash_key
from postwire_common.schemas import SuppressionChange
from postwire_ingest.domain_store import DomainStore

OUTBOX_TABLE = "ingest.outbox"

# Accepting a request is one statement (one round trip, atomic): claim the idempotency key
# if there is one, and only then insert the contents, messages and their outbox entries.
_ACCEPT = """
WITH claim AS (
    INSERT INTO ingest.idempotency_keys (account_id, key, request_hash, response)
    SELECT $1, $2::text, $3::bytea, $4::jsonb WHERE $2::text IS NOT NULL
        AND NOT EXISTS (
            SELECT 1 FROM ingest.idempotency_keys WHERE account_id = $1 AND key = $2::text
        )
    ON CONFLICT DO NOTHING
    RETURNING true
), go AS (
    SELECT $2::text IS NULL OR EXISTS (SELECT 1 FROM claim) AS ok
), messages AS (
    INSERT INTO ingest.messages (env_id, account_id, request_id, api_user, msg_id, sender,
        rcpt, subject, label, status, size, created_at)
    SELECT u.env_id, $1, u.request_id, u.api_user, u.msg_id, u.sender, u.rcpt, u.subject,
        u.label, u.status, u.size, u.created_at
    FROM unnest($5::text[], $6::text[], $7::text[], $8::text[], $9::text[], $10::text[],
        $11::text[], $12::text[], $13::text[], $14::int[], $15::timestamptz[])
        AS u(env_id, request_id, api_user, msg_id, sender, rcpt, subject, label, status,
            size, created_at)
    WHERE (SELECT ok FROM go)
), outbox AS (
    INSERT INTO ingest.outbox (exchange, routing_key, message_id, body)
    SELECT * FROM unnest($16::text[], $17::text[], $18::text[], $19::bytea[])
    WHERE (SELECT ok FROM go)
), CONTENTS
SELECT ok FROM go
""".replace("CONTENTS", insert_cte(20, guard="(SELECT ok FROM go)"))


# Accepting requests without an idempotency key, many at once (group commit): their
# contents, messages and outbox entries in one statement.
_ACCEPT_MANY = """
WITH CONTENTS, messages AS (
    INSERT INTO ingest.messages (env_id, account_id, request_id, api_user, msg_id, sender,
        rcpt, subject, label, status, size, created_at)
    SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[],
        $6::text[], $7::text[], $8::text[], $9::text[], $10::text[], $11::int[],
        $12::timestamptz[])
)
INSERT INTO ingest.outbox (exchange, routing_key, message_id, body)
SELECT * FROM unnest($13::text[], $14::text[], $15::text[], $16::bytea[])
""".replace("CONTENTS", insert_cte(17))


# Accepting requests with idempotency keys, many at once (group commit): each request
# (numbered n) claims its key; only the winners' contents, messages and outbox entries are
# written. A key given twice in one batch is claimed by its first request.
_ACCEPT_KEYED_MANY = """
WITH req AS (
    SELECT * FROM unnest($1::int[], $2::text[], $3::text[], $4::bytea[], $5::text[])
        AS r(n, account_id, key, request_hash, response)
), fresh AS (
    SELECT DISTINCT ON (r.account_id, r.key) r.* FROM req r
    WHERE NOT EXISTS (
        SELECT 1 FROM ingest.idempotency_keys k
        WHERE k.account_id = r.account_id AND k.key = r.key
    )
    ORDER BY r.account_id, r.key, r.n
), claim AS (
    INSERT INTO ingest.idempotency_keys (account_id, key, request_hash, response)
    SELECT account_id, key, request_hash, response::jsonb FROM fresh
    ON CONFLICT DO NOTHING
    RETURNING account_id, key
), won AS (
    SELECT f.n FROM fresh f JOIN claim c ON c.account_id = f.account_id AND c.key = f.key
), messages AS (
    INSERT INTO ingest.messages (env_id, account_id, request_id, api_user, msg_id, sender,
        rcpt, subject, label, status, size, created_at)
    SELECT u.env_id, u.account_id, u.request_id, u.api_user, u.msg_id, u.sender, u.rcpt,
        u.subject, u.label, u.status, u.size, u.created_at
    FROM unnest($6::int[], $7::text[], $8::text[], $9::text[], $10::text[], $11::text[],
        $12::text[], $13::text[], $14::text[], $15::text[], $16::text[], $17::int[],
        $18::timestamptz[])
        AS u(n, env_id, account_id, request_id, api_user, msg_id, sender, rcpt, subject,
            label, status, size, created_at)
    WHERE u.n IN (SELECT n FROM won)
), outbox AS (
    INSERT INTO ingest.outbox (exchange, routing_key, message_id, body)
    SELECT u.exchange, u.routing_key, u.message_id, u.body
    FROM unnest($19::int[], $20::text[], $21::text[], $22::text[], $23::bytea[])
        AS u(n, exchange, routing_key, message_id, body)
    WHERE u.n IN (SELECT n FROM won)
), contents AS (
    INSERT INTO ingest.contents (id, account_id, head, body, tracking)
    SELECT u.id, u.account_id, u.head, u.body, u.tracking::jsonb
    FROM unnest($24::int[], $25::text[], $26::text[], $27::bytea[], $28::bytea[], $29::text[])
        AS u(n, id, account_id, head, body, tracking)
    WHERE u.n IN (SELECT n FROM won)
    ON CONFLICT (id) DO NOTHING
)
SELECT n FROM won
"""


# A sender with its domain's signing keys: the Ed25519 key only while it is on and its
# record verifies.
_SENDER = """
SELECT s.address, s.alias, s.domain, d.status AS domain_status, d.dkim_selector,
    d.dkim_private_key, ed.selector AS dkim_ed25519_selector,
    ed.private_key AS dkim_ed25519_private_key,
    coalesce(d.record_status ->> 'tracking' = 'ok', false) AS tracking_verified
FROM ingest.senders s JOIN ingest.domains d
    ON d.account_id = s.account_id AND d.name = s.domain
LEFT JOIN LATERAL (
    SELECT d.dkim_ed25519_selector AS selector, d.dkim_ed25519_private_key AS private_key
    WHERE d.dkim_ed25519 AND d.record_status ->> 'dkim_ed25519' = 'ok'
) ed ON true
WHERE s.account_id = $1 AND s.address = $2
"""


@dataclass(frozen=True, slots=True)
class ApiUserRow:
    name: str  # unique within its account
    login: str  # unique platform-wide: what HTTP Basic names
    type: str


@dataclass(frozen=True, slots=True)
class SenderRow:
    address: str
    alias: str | None
    domain: str
    domain_status: str
    dkim_selector: str
    dkim_private_key: str  # encrypted as stored: only delivery decrypts it
    # The Ed25519 key, only while it is on and its record verifies (else None): it signs
    # next to the RSA key.
    dkim_ed25519_selector: str | None = None
    dkim_ed25519_private_key: str | None = None
    tracking_verified: bool = False  # the track.<domain> CNAME points at us


@dataclass(frozen=True, slots=True)
class KeyedRequest:
    """A request to accept under an idempotency key (``accept_keyed_many``)."""

    account_id: str
    key: str
    request_hash: bytes
    response: Any  # what the request is answered, kept with the key for replays
    rows: Sequence[MessageRow]
    outgoing: Sequence[Outgoing]
    contents: Sequence[tuple[str, StoredContent]]  # (content_id, content)


@dataclass(frozen=True, slots=True)
class MessageRow:
    env_id: str
    request_id: str
    api_user: str
    msg_id: str
    sender: str
    rcpt: str
    subject: str | None
    label: str | None
    status: str
    size: int
    created_at: datetime


class IngestStore(DomainStore):
    """Every table of ingest; the domains' statements are :class:`DomainStore`'s."""

    # accounts and API users ------------------------------------------------------------

    async def create_account(
        self, account_id: str, name: str, api_user: ApiUserRow, api_key: str
    ) -> None:
        async with self.pool.acquire() as conn, conn.transaction():
            try:
                await conn.execute(
                    "INSERT INTO ingest.accounts (id, name) VALUES ($1, $2)", account_id, name
                )
            except asyncpg.UniqueViolationError:
                raise AlreadyExists(f"an account named {name!r} exists") from None
            await self._insert_api_user(conn, account_id, api_user, api_key)

    async def account_name(self, account_id: str) -> str:
        value = await self.pool.fetchval(
            "SELECT name FROM ingest.accounts WHERE id = $1", account_id
        )
        if value is None:
            raise NotFound("no such account")
        return str(value)

    async def account_id_by_name(self, name: str) -> str | None:
        value = await self.pool.fetchval("SELECT id FROM ingest.accounts WHERE name = $1", name)
        return str(value) if value is not None else None

    async def create_api_user(self, account_id: str, user: ApiUserRow, api_key: str) -> None:
        async with self.pool.acquire() as conn:
            await self._insert_api_user(conn, account_id, user, api_key)

    async def _insert_api_user(
        self, conn: asyncpg.Connection, account_id: str, user: ApiUserRow, api_key: str
    ) -> None:
        # Names are unique per account and logins embed the account's (unique) name, so
        # a conflict is always with a user of the same account: it reveals nothing.
        try:
            await conn.execute(
                "INSERT INTO ingest.api_users (name, login, account_id, type, key_hash, "
                "key_sealed) VALUES ($1, $2, $3, $4, $5, $6)",
                user.name,
                user.login,
                account_id,
                user.type,
                hash_key(api_key),
                self._keyring.encrypt(api_key),
            )
        except asyncpg.UniqueViolationError:
            raise AlreadyExists(f"this account has an API user named {user.name!r}") from None

    async def list_api_users(self, account_id: str) -> list[dict[str, Any]]:
        rows = await self.pool.fetch(
            "SELECT login AS api_user, name, type, tracking::text, created_at "
            "FROM ingest.api_users WHERE account_id = $1 ORDER BY created_at, name",
            account_id,
        )
        return [
            {**dict(r), "tracking": json.loads(r["tracking"]) if r["tracking"] else None}
            for r in rows
        ]

    async def api_user_tracking(self, login: str) -> str | None:
        """The API user's default tracking as JSON (None: it tracks nothing)."""
        value: str | None = await self.pool.fetchval(
            "SELECT tracking::text FROM ingest.api_users WHERE login = $1", login
        )
        return value

    async def set_api_user_tracking(
        self, account_id: str, name: str, tracking: str | None
    ) -> ApiUserRow:
        row = await self.pool.fetchrow(
            "UPDATE ingest.api_users SET tracking = $3::jsonb WHERE account_id = $1 "
            "AND (name = $2 OR login = $2) RETURNING name, login, type",
            account_id,
            name,
            tracking,
        )
        if row is None:
            raise NotFound(f"no API user {name}")
        return ApiUserRow(row["name"], row["login"], row["type"])

    # An account's API user is named by its name or its login.
    _API_USER = "account_id = $1 AND (name = $2 OR login = $2)"

    async def api_user(self, account_id: str, name: str) -> ApiUserRow:
        row = await self.pool.fetchrow(
            f"SELECT name, login, type FROM ingest.api_users WHERE {self._API_USER}",  # noqa: S608
            account_id,
            name,
        )
        if row is None:
            raise NotFound(f"no API user {name!r}")
        return ApiUserRow(**dict(row))

    async def delete_api_user(self, account_id: str, name: str) -> str:
        """Delete the user; returns its login."""
        deleted = await self.pool.fetchval(
            f"DELETE FROM ingest.api_users WHERE {self._API_USER} RETURNING login",  # noqa: S608
            account_id,
            name,
        )
        if deleted is None:
            raise NotFound(f"no API user {name!r}")
        return str(deleted)

    async def count_api_users(self, account_id: str) -> int:
        return int(
            await self.pool.fetchval(
                "SELECT count(*) FROM ingest.api_users WHERE account_id = $1", account_id
            )
        )

    async def set_api_key(self, account_id: str, name: str, api_key: str) -> None:
        updated = await self.pool.fetchval(
            "UPDATE ingest.api_users SET key_hash = $3, key_sealed = $4 "  # noqa: S608
            f"WHERE {self._API_USER} RETURNING name",
            account_id,
            name,
            hash_key(api_key),
            self._keyring.encrypt(api_key),
        )
        if updated is None:
            raise NotFound(f"no API user {name!r}")

    async def rewrite_api_keys(self, *, rotate: bool) -> int:
        """Re-encrypt the sealed API keys with the first key (``postwire rotate-secrets``);
        returns how many were rewritten."""
        rows = await self.pool.fetch(
            "SELECT login, key_sealed FROM ingest.api_users WHERE key_sealed IS NOT NULL"
        )
        changes = self._keyring.rewrites(
            ((r["login"], r["key_sealed"]) for r in rows), rotate=rotate
        )
        if not changes:
            return 0
        updated = await self.pool.fetchval(
            "WITH done AS (UPDATE ingest.api_users a SET key_sealed = u.new "
            "FROM unnest($1::text[], $2::text[], $3::text[]) AS u(login, old, new) "
            "WHERE a.login = u.login AND a.key_sealed = u.old RETURNING 1) "
            "SELECT count(*) FROM done",
            [login for login, _, _ in changes],
            [old for _, old, _ in changes],
            [new for _, _, new in changes],
        )
        return int(updated)

    # senders -------------------------------------------------------------------------

    async def insert_sender(
        self, account_id: str, address: str, domain: str, alias: str | None
    ) -> None:
        try:
            await self.pool.execute(
                "INSERT INTO ingest.senders (account_id, address, domain, alias) "
                "VALUES ($1, $2, $3, $4)",
                account_id,
                address,
                domain,
                alias,
            )
        except asyncpg.UniqueViolationError:
            raise AlreadyExists(f"sender {address} exists") from None
        except asyncpg.ForeignKeyViolationError:
            raise NotFound(f"no domain {domain}") from None

    async def list_senders(self, account_id: str) -> list[dict[str, Any]]:
        rows = await self.pool.fetch(
            "SELECT s.address, s.alias, s.domain, d.status AS domain_status, s.created_at "
            "FROM ingest.senders s JOIN ingest.domains d "
            "ON d.account_id = s.account_id AND d.name = s.domain "
            "WHERE s.account_id = $1 ORDER BY s.created_at, s.address",
            account_id,
        )
        return [dict(r) for r in rows]

    async def get_sender(self, account_id: str, address: str) -> SenderRow | None:
        row = await self.pool.fetchrow(_SENDER, account_id, address)
        return SenderRow(**dict(row)) if row else None

    async def delete_sender(self, account_id: str, address: str) -> None:
        deleted = await self.pool.fetchval(
            "DELETE FROM ingest.senders WHERE account_id = $1 AND address = $2 RETURNING address",
            account_id,
            address,
        )
        if deleted is None:
            raise NotFound(f"no sender {address}")

    # suppressions (a copy of the events service's lists) ---------------------------

    async def apply_suppressions(self, changes: Sequence[SuppressionChange]) -> None:
        """Apply changes in order; one older than what is stored changes nothing."""
        latest = {(c.tenant_id, c.address): c for c in changes}.values()  # last one wins
        await self.pool.execute(
            "INSERT INTO ingest.suppressions AS s (tenant_id, address, suppressed, reason, "
            "changed_at) SELECT * FROM unnest($1::text[], $2::text[], $3::bool[], $4::text[], "
            "$5::timestamptz[]) ON CONFLICT (tenant_id, address) DO UPDATE SET "
            "suppressed = EXCLUDED.suppressed, reason = EXCLUDED.reason, "
            "changed_at = EXCLUDED.changed_at WHERE EXCLUDED.changed_at >= s.changed_at",
            [c.tenant_id for c in latest],
            [c.address for c in latest],
            [c.suppressed for c in latest],
            [c.reason.value if c.reason else None for c in latest],
            [c.time for c in latest],
        )

    async def suppressed(
        self, lookups: Sequence[tuple[str, Sequence[str]]]
    ) -> list[dict[str, str]]:
        """For each (account, addresses): lower-cased address -> reason of those that are
        suppressed. One statement for many requests' lookups (group commit)."""
        tenants = [t for t, addresses in lookups for _ in addresses]
        lowered = [a.lower() for _, addresses in lookups for a in addresses]
        rows = await self.pool.fetch(
            "SELECT s.tenant_id, s.address, s.reason FROM ingest.suppressions s "
            "JOIN unnest($1::text[], $2::text[]) AS u(t, a) "
            "ON s.tenant_id = u.t AND s.address = u.a WHERE s.suppressed",
            tenants,
            lowered,
        )
        found = {(r["tenant_id"], r["address"]): r["reason"] or "manual" for r in rows}
        return [
            {a.lower(): found[(t, a.lower())] for a in addresses if (t, a.lower()) in found}
            for t, addresses in lookups
        ]

    # messages ------------------------------------------------------------------------

    async def accept_many(
        self,
        requests: Sequence[tuple[str, Sequence[MessageRow], Sequence[Outgoing]]],
        contents: Sequence[tuple[str, str, StoredContent]],
    ) -> None:
        """Commit several requests' ``(account_id, rows, outgoing)`` and their
        ``(content_id, account_id, content)`` in one statement."""
        rows = [(account_id, r) for account_id, found, _ in requests for r in found]
        await self.pool.execute(
            _ACCEPT_MANY,
            [r.env_id for _, r in rows],
            [account_id for account_id, _ in rows],
            [r.request_id for _, r in rows],
            [r.api_user for _, r in rows],
            [r.msg_id for _, r in rows],
            [r.sender for _, r in rows],
            [r.rcpt for _, r in rows],
            [r.subject for _, r in rows],
            [r.label for _, r in rows],
            [r.status for _, r in rows],
            [r.size for _, r in rows],
            [r.created_at for _, r in rows],
            *outbox_columns([o for _, _, outgoing in requests for o in outgoing]),
            *content_columns(contents),
        )

    async def accept_keyed_many(self, requests: Sequence[KeyedRequest]) -> list[Any]:
        """Commit several requests that carry idempotency keys in one statement; for each,
        None when it claimed its key (and was written), else the key's earlier use
        (``request_hash``, ``response``), and nothing of it was written."""
        rows = [(n, r.account_id, m) for n, r in enumerate(requests) for m in r.rows]
        out = [(n, o) for n, r in enumerate(requests) for o in r.outgoing]
        stored = [
            (n, cid, r.account_id, c) for n, r in enumerate(requests) for cid, c in r.contents
        ]
        outbox = outbox_columns([o for _, o in out])
        won = await self.pool.fetch(
            _ACCEPT_KEYED_MANY,
            list(range(len(requests))),
            [r.account_id for r in requests],
            [r.key for r in requests],
            [r.request_hash for r in requests],
            [json.dumps(r.response) for r in requests],
            [n for n, _, _ in rows],
            [m.env_id for _, _, m in rows],
            [a for _, a, _ in rows],
            [m.request_id for _, _, m in rows],
            [m.api_user for _, _, m in rows],
            [m.msg_id for _, _, m in rows],
            [m.sender for _, _, m in rows],
            [m.rcpt for _, _, m in rows],
            [m.subject for _, _, m in rows],
            [m.label for _, _, m in rows],
            [m.status for _, _, m in rows],
            [m.size for _, _, m in rows],
            [m.created_at for _, _, m in rows],
            [n for n, _ in out],
            *outbox,
            [n for n, _, _, _ in stored],
            [cid for _, cid, _, _ in stored],
            [a for _, _, a, _ in stored],
            [c.head for _, _, _, c in stored],
            [c.body for _, _, _, c in stored],
            [c.tracking for _, _, _, c in stored],
        )
        winners = {row["n"] for row in won}
        losers = [r for n, r in enumerate(requests) if n not in winners]
        earlier: dict[tuple[str, str], Any] = {}
        if losers:
            for row in await self.pool.fetch(
                "SELECT DISTINCT ON (k.account_id, k.key) k.account_id, k.key, "
                "k.request_hash, k.response FROM ingest.idempotency_keys k "
                "JOIN unnest($1::text[], $2::text[]) AS u(a, key) "
                "ON k.account_id = u.a AND k.key = u.key "
                "ORDER BY k.account_id, k.key, k.created_at",
                [r.account_id for r in losers],
                [r.key for r in losers],
            ):
                earlier[(row["account_id"], row["key"])] = row
        return [
            None if n in winners else earlier.get((r.account_id, r.key))
            for n, r in enumerate(requests)
        ]

    async def accept(
        self,
        account_id: str,
        rows: Sequence[MessageRow],
        outgoing: Sequence[Outgoing],
        idempotency: tuple[str, bytes, Any] | None,
        contents: Sequence[tuple[str, StoredContent]] = (),
    ) -> asyncpg.Record | None:
        """Commit the contents (``(content_id, content)``), the message rows and their
        outbox entries in one statement.

        With ``idempotency = (key, request_hash, response)`` the key is claimed in the same
        statement; if it was used before, nothing is written and the earlier use
        (``request_hash``, ``response``) is returned. A concurrent request with the same
        key waits on the unique index until the first one commits, then sees its row.
        """
        key, request_hash, response = idempotency or (None, None, None)
        accepted = await self.pool.fetchval(
            _ACCEPT,
            account_id,
            key,
            request_hash,
            response,
            [r.env_id for r in rows],
            [r.request_id for r in rows],
            [r.api_user for r in rows],
            [r.msg_id for r in rows],
            [r.sender for r in rows],
            [r.rcpt for r in rows],
            [r.subject for r in rows],
            [r.label for r in rows],
            [r.status for r in rows],
            [r.size for r in rows],
            [r.created_at for r in rows],
            *outbox_columns(outgoing),
            *content_columns([(cid, account_id, content) for cid, content in contents]),
        )
        if accepted:
            return None
        return await self.pool.fetchrow(
            "SELECT request_hash, response FROM ingest.idempotency_keys "
            "WHERE account_id = $1 AND key = $2 ORDER BY created_at LIMIT 1",
            account_id,
            key,
        )
