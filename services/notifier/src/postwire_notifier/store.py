"""notifier's SQL, and nowhere else. Tables live in the ``notifier`` schema.

Webhook app keys are stored encrypted (``postwire_common.crypto``): encrypted on the way
in, decrypted on the way out, so ``Webhook.app_key`` and ``Push.app_key`` are always the
plaintext key that signs pushes.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import asyncpg

from postwire_common.crypto import Keyring
from postwire_common.errors import NotAvailable, NotFound
from postwire_notifier.http_client import Answer
from postwire_notifier.signature import new_token


@dataclass(frozen=True, slots=True)
class Webhook:
    id: str
    tenant_id: str
    url: str
    events: list[str]
    app_key: str
    push_format: str = "postwire"  # or "sendcloud" (vendors/sendcloud.py)


@dataclass(frozen=True, slots=True)
class Push:
    """A pending push, claimed for its next attempt."""

    id: int
    event_at: datetime  # the partition key: updates by it touch one partition
    webhook_id: str
    url: str
    app_key: str
    token: str
    body: dict[str, Any]
    attempts: int  # attempts made so far
    # An HTTP subscription's push: its body format and retry strategy (None: a webhook's
    # signed JSON on the webhook schedule).
    content_format: str | None = None
    notify_strategy: str | None = None
    push_format: str = "postwire"  # a webhook's: or "sendcloud" (vendors/sendcloud.py)

    @property
    def key(self) -> str:
        return str(self.id)

    @property
    def lane(self) -> str:
        return self.webhook_id


@dataclass(frozen=True, slots=True)
class Attempt:
    """One attempt's outcome: the push ends, or is due again in ``retry_in`` seconds."""

    push: Push
    attempt: int
    answer: Answer
    retry_in: float | None

    @property
    def state(self) -> str:
        if self.answer.ok:
            return "delivered"
        return "pending" if self.retry_in is not None else "dropped"


# One statement, so attempts and push states are written together (or not at all).
# Attempts recorded already are skipped; only recent days of attempts are looked at.
_RECORD = """
WITH u AS (
    SELECT * FROM unnest($1::bigint[], $2::timestamptz[], $3::int[], $4::int[], $5::int[],
        $6::text[], $7::text[], $8::bool[], $9::text[], $10::float8[])
        AS u(id, event_at, attempt, http_status, latency_ms, response, error, will_retry,
            state, retry_in)
), attempts AS (
    INSERT INTO notifier.push_attempts (push_id, attempt, http_status, latency_ms,
        response, error, will_retry)
    SELECT u.id, u.attempt, u.http_status, u.latency_ms, u.response, u.error, u.will_retry
    FROM u WHERE NOT EXISTS (SELECT 1 FROM notifier.push_attempts a
        WHERE a.push_id = u.id AND a.attempt = u.attempt AND a.at > now() - interval '2 days')
    ON CONFLICT DO NOTHING
)
UPDATE notifier.pushes p
SET attempts = u.attempt, state = u.state, updated_at = now(),
    due_at = now() + make_interval(secs => u.retry_in), lease_owner = NULL, lease_until = NULL
FROM u
WHERE p.id = u.id AND p.event_at = u.event_at AND p.attempts < u.attempt
"""

_CLAIM = """
UPDATE notifier.pushes p
SET lease_owner = $1, lease_until = now() + make_interval(secs => $2)
FROM (
    SELECT id, event_at FROM notifier.pushes
    WHERE state = 'pending' AND due_at <= now()
        AND (lease_until IS NULL OR lease_until < now())
        AND webhook_id <> ALL($3::text[])
    ORDER BY due_at
    LIMIT $4
    FOR UPDATE SKIP LOCKED
) c, notifier.webhooks w
WHERE p.id = c.id AND p.event_at = c.event_at AND w.id = p.webhook_id
RETURNING p.id, p.event_at, p.webhook_id, w.url, w.app_key, p.token, p.body, p.attempts,
    w.content_format, w.notify_strategy, w.push_format
"""


class NotifierStore:
    def __init__(self, pool: asyncpg.Pool, keyring: Keyring) -> None:
        self.pool = pool
        self._keyring = keyring

    def _webhook(self, row: asyncpg.Record) -> Webhook:
        return Webhook(**{**dict(row), "app_key": self._keyring.decrypt(row["app_key"])})

    # webhooks ------------------------------------------------------------------------

    async def insert_webhook(self, hook: Webhook, limit: int) -> None:
        async with self.pool.acquire() as conn, conn.transaction():
            await conn.execute("SELECT pg_advisory_xact_lock(hashtext($1))", hook.tenant_id)
            count = await conn.fetchval(
                "SELECT count(*) FROM notifier.webhooks WHERE tenant_id = $1 AND sub_name IS NULL",
                hook.tenant_id,
            )
            if count >= limit:
                raise NotAvailable(f"an account can have at most {limit} webhooks")
            await conn.execute(
                "INSERT INTO notifier.webhooks (id, tenant_id, url, events, app_key, "
                "push_format) VALUES ($1, $2, $3, $4, $5, $6)",
                hook.id,
                hook.tenant_id,
                hook.url,
                hook.events,
                self._keyring.encrypt(hook.app_key),
                hook.push_format,
            )
            await conn.execute("SELECT pg_notify('postwire_webhooks', $1)", hook.tenant_id)

    async def list_webhooks(self, tenant_id: str) -> list[dict[str, Any]]:
        rows = await self.pool.fetch(
            "SELECT id, url, events, push_format AS format, created_at FROM notifier.webhooks "
            "WHERE tenant_id = $1 "
            "AND sub_name IS NULL ORDER BY created_at, id",
            tenant_id,
        )
        return [dict(r) for r in rows]

    async def webhook(self, tenant_id: str, webhook_id: str) -> Webhook:
        row = await self.pool.fetchrow(
            "SELECT id, tenant_id, url, events, app_key, push_format FROM notifier.webhooks "
            "WHERE tenant_id = $1 AND id = $2 AND sub_name IS NULL",
            tenant_id,
            webhook_id,
        )
        if row is None:
            raise NotFound(f"no webhook {webhook_id}")
        return self._webhook(row)

    async def delete_webhook(self, tenant_id: str, webhook_id: str) -> None:
        # The notice goes out with the commit: every process forgets the tenant's list.
        deleted = await self.pool.fetchval(
            "WITH gone AS (DELETE FROM notifier.webhooks WHERE tenant_id = $1 AND id = $2 "
            "AND sub_name IS NULL RETURNING id) "
            "SELECT id FROM gone, pg_notify('postwire_webhooks', $1)",
            tenant_id,
            webhook_id,
        )
        if deleted is None:
            raise NotFound(f"no webhook {webhook_id}")

    async def tenant_webhooks(self, tenant_id: str) -> list[Webhook]:
        rows = await self.pool.fetch(
            "SELECT id, tenant_id, url, events, app_key, push_format FROM notifier.webhooks "
            "WHERE tenant_id = $1 AND sub_name IS NULL ORDER BY id",
            tenant_id,
        )
        return [self._webhook(r) for r in rows]

    async def rewrite_app_keys(self, *, rotate: bool) -> int:
        """Encrypt app keys stored in plaintext (or, with ``rotate``, re-encrypt every one
        with the first key); returns how many were rewritten."""
        rows = await self.pool.fetch(
            "SELECT id, app_key FROM notifier.webhooks WHERE $1 OR app_key NOT LIKE 'fernet:%'",
            rotate,
        )
        changes = self._keyring.rewrites(((r["id"], r["app_key"]) for r in rows), rotate=rotate)
        if not changes:
            return 0
        ids, olds, news = (list(c) for c in zip(*changes, strict=True))
        # A row changed meanwhile (deleted, or rewritten by another process) is left alone.
        updated = await self.pool.fetchval(
            "WITH done AS (UPDATE notifier.webhooks w SET app_key = u.new "
            "FROM unnest($1::text[], $2::text[], $3::text[]) AS u(id, old, new) "
            "WHERE w.id = u.id AND w.app_key = u.old RETURNING 1) SELECT count(*) FROM done",
            ids,
            olds,
            news,
        )
        return int(updated)

    # pushes --------------------------------------------------------------------------

    async def create_pushes(
        self, pushes: Sequence[tuple[str, str, datetime, str, dict[str, Any]]]
    ) -> int:
        """Pushes as (webhook_id, event_id, event time, token, body), due now; one per
        (webhook, event), so an event announced twice is still pushed once (an event's time
        never changes). Returns how many are new."""
        if not pushes:
            return 0
        webhook_ids, event_ids, times, tokens, bodies = (list(c) for c in zip(*pushes, strict=True))
        inserted = await self.pool.fetchval(
            "WITH new AS (INSERT INTO notifier.pushes (webhook_id, event_id, event_at, token, "
            "body) SELECT u.w, u.e, u.a, u.t, u.b FROM unnest($1::text[], $2::text[], "
            "$3::timestamptz[], $4::text[], $5::jsonb[]) AS u(w, e, a, t, b) "
            # Joined with webhooks: one deleted since it was looked up gets no push.
            "JOIN notifier.webhooks h ON h.id = u.w "
            "ON CONFLICT (webhook_id, event_id, event_at) DO NOTHING RETURNING 1) "
            "SELECT count(*) FROM new",
            webhook_ids,
            event_ids,
            times,
            tokens,
            bodies,
        )
        return int(inserted)

    async def claim(
        self, owner: str, limit: int, exclude: Sequence[str], lease: float
    ) -> list[Push]:
        rows = await self.pool.fetch(_CLAIM, owner, lease, list(exclude), limit)
        return [Push(**{**dict(r), "app_key": self._keyring.decrypt(r["app_key"])}) for r in rows]

    async def renew(self, owner: str, keys: Sequence[str], lease: float) -> None:
        await self.pool.execute(
            "UPDATE notifier.pushes SET lease_until = now() + make_interval(secs => $3) "
            "WHERE lease_owner = $1 AND id = ANY($2::bigint[])",
            owner,
            [int(k) for k in keys],
            lease,
        )

    async def release(self, owner: str, keys: Sequence[str]) -> None:
        await self.pool.execute(
            "UPDATE notifier.pushes SET lease_owner = NULL, lease_until = NULL "
            "WHERE lease_owner = $1 AND id = ANY($2::bigint[])",
            owner,
            [int(k) for k in keys],
        )

    # push history ----------------------------------------------------------------------

    async def subscription_webhook(self, tenant_id: str, topic: str, name: str) -> str:
        """The webhook row that pushes an HTTP subscription."""
        found = await self.pool.fetchval(
            "SELECT id FROM notifier.webhooks WHERE tenant_id = $1 AND sub_topic = $2 "
            "AND sub_name = $3",
            tenant_id,
            topic,
            name,
        )
        if found is None:
            raise NotFound(f"no HTTP subscription {name} on topic {topic}")
        return str(found)

    async def deliveries(
        self, webhook_id: str, *, state: str | None, limit: int, before: int | None
    ) -> list[dict[str, Any]]:
        """Pushes of one webhook row, newest first, each with every attempt made."""
        rows = await self.pool.fetch(
            "SELECT p.id, p.event_id, p.state, p.attempts, p.created_at, "
            "CASE WHEN p.state = 'pending' THEN p.due_at END AS next_try, "
            "coalesce((SELECT json_agg(json_build_object('attempt', a.attempt, 'at', a.at, "
            "'http_status', a.http_status, 'latency_ms', a.latency_ms, 'error', a.error, "
            "'will_retry', a.will_retry) ORDER BY a.attempt, a.at) "
            "FROM notifier.push_attempts a WHERE a.push_id = p.id), '[]') AS history "
            "FROM notifier.pushes p WHERE p.webhook_id = $1 "
            "AND ($2::text IS NULL OR p.state = $2) AND ($3::bigint IS NULL OR p.id < $3) "
            "ORDER BY p.id DESC LIMIT $4",
            webhook_id,
            state,
            before,
            limit,
        )
        return [dict(r) for r in rows]  # the pool decodes json (postwire_common.db)

    async def redeliver(self, webhook_id: str, push_id: int) -> None:
        """Push a finished push again now, with a new token (and so a fresh signature)."""
        row = await self.pool.fetchrow(
            "WITH p AS (SELECT id, event_at, state FROM notifier.pushes "
            "WHERE id = $1 AND webhook_id = $2), "
            "again AS (UPDATE notifier.pushes q SET state = 'pending', due_at = now(), "
            "token = $3, updated_at = now(), lease_owner = NULL, lease_until = NULL "
            "FROM p WHERE q.id = p.id AND q.event_at = p.event_at AND p.state <> 'pending' "
            "RETURNING q.id) SELECT p.state, (SELECT count(*) FROM again) AS changed FROM p",
            push_id,
            webhook_id,
            new_token(),
        )
        if row is None:
            raise NotFound(f"no delivery {push_id}")
        if not row["changed"]:
            raise NotAvailable(f"delivery {push_id} is still pending; it will be tried again")

    async def record_attempt(
        self, push: Push, attempt: int, answer: Answer, *, retry_in: float | None
    ) -> None:
        """Record attempt ``attempt``; the push ends, or is due again in ``retry_in`` s."""
        await self.record_attempts([Attempt(push, attempt, answer, retry_in)])

    async def record_attempts(self, attempts: Sequence[Attempt]) -> None:
        """Record many attempts in one statement (the lanes' workers, group committed).

        An attempt recorded already (a repeat after a lost lease) is recorded once, and
        leaves its push alone when a later attempt has been recorded since."""
        if not attempts:
            return
        rows = [
            (
                a.push.id,
                a.push.event_at,
                a.attempt,
                a.answer.status,
                a.answer.latency_ms,
                a.answer.excerpt[:1024] or None,
                a.answer.error,
                a.retry_in is not None,
                a.state,
                a.retry_in or 0.0,
            )
            for a in attempts
        ]
        await self.pool.execute(_RECORD, *(list(c) for c in zip(*rows, strict=True)))
