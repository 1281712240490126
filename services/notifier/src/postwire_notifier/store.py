"""notifier's SQL, and nowhere else. Tables live in the ``notifier`` schema."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import asyncpg

from postwire_common.errors import NotFound
from postwire_notifier.http_client import Answer


@dataclass(frozen=True, slots=True)
class Webhook:
    id: str
    tenant_id: str
    url: str
    events: list[str]
    app_key: str


@dataclass(frozen=True, slots=True)
class Push:
    id: int
    webhook_id: str
    url: str
    app_key: str
    token: str
    body: dict[str, Any]
    state: str
    attempts: int


class NotifierStore:
    def __init__(self, pool: asyncpg.Pool) -> None:
        self.pool = pool

    # webhooks ------------------------------------------------------------------------

    async def insert_webhook(self, hook: Webhook, limit: int) -> None:
        async with self.pool.acquire() as conn, conn.transaction():
            await conn.execute("SELECT pg_advisory_xact_lock(hashtext($1))", hook.tenant_id)
            count = await conn.fetchval(
                "SELECT count(*) FROM notifier.webhooks WHERE tenant_id = $1", hook.tenant_id
            )
            if count >= limit:
                from postwire_common.errors import NotAvailable

                raise NotAvailable(f"an account can have at most {limit} webhooks")
            await conn.execute(
                "INSERT INTO notifier.webhooks (id, tenant_id, url, events, app_key) "
                "VALUES ($1, $2, $3, $4, $5)",
                hook.id,
                hook.tenant_id,
                hook.url,
                hook.events,
                hook.app_key,
            )
            await conn.execute("SELECT pg_notify('postwire_webhooks', $1)", hook.tenant_id)

    async def list_webhooks(self, tenant_id: str) -> list[dict[str, Any]]:
        rows = await self.pool.fetch(
            "SELECT id, url, events, created_at FROM notifier.webhooks WHERE tenant_id = $1 "
            "ORDER BY created_at, id",
            tenant_id,
        )
        return [dict(r) for r in rows]

    async def webhook(self, tenant_id: str, webhook_id: str) -> Webhook:
        row = await self.pool.fetchrow(
            "SELECT id, tenant_id, url, events, app_key FROM notifier.webhooks "
            "WHERE tenant_id = $1 AND id = $2",
            tenant_id,
            webhook_id,
        )
        if row is None:
            raise NotFound(f"no webhook {webhook_id}")
        return Webhook(**dict(row))

    async def delete_webhook(self, tenant_id: str, webhook_id: str) -> None:
        # The notice goes out with the commit: every process forgets the tenant's list.
        deleted = await self.pool.fetchval(
            "WITH gone AS (DELETE FROM notifier.webhooks WHERE tenant_id = $1 AND id = $2 "
            "RETURNING id) SELECT id FROM gone, pg_notify('postwire_webhooks', $1)",
            tenant_id,
            webhook_id,
        )
        if deleted is None:
            raise NotFound(f"no webhook {webhook_id}")

    async def tenant_webhooks(self, tenant_id: str) -> list[Webhook]:
        rows = await self.pool.fetch(
            "SELECT id, tenant_id, url, events, app_key FROM notifier.webhooks "
            "WHERE tenant_id = $1 ORDER BY id",
            tenant_id,
        )
        return [Webhook(**dict(r)) for r in rows]

    # pushes --------------------------------------------------------------------------

    async def create_pushes(
        self,
        hooks: Sequence[Webhook],
        event_id: str,
        body: dict[str, Any],
        tokens: Sequence[str],
    ) -> list[int]:
        """One push per webhook for ``event_id``; existing ones are returned, not renewed."""
        rows = await self.pool.fetch(
            "INSERT INTO notifier.pushes (webhook_id, event_id, token, body) "
            # Joined with webhooks: one deleted since it was looked up gets no push.
            "SELECT u.w, $2, u.t, $3 FROM unnest($1::text[], $4::text[]) AS u(w, t) "
            "JOIN notifier.webhooks h ON h.id = u.w "
            "ON CONFLICT (webhook_id, event_id) DO UPDATE SET event_id = EXCLUDED.event_id "
            "RETURNING id",
            [h.id for h in hooks],
            event_id,
            body,
            list(tokens),
        )
        return [r["id"] for r in rows]

    async def push(self, push_id: int) -> Push | None:
        row = await self.pool.fetchrow(
            "SELECT p.id, p.webhook_id, w.url, w.app_key, p.token, p.body, p.state, p.attempts "
            "FROM notifier.pushes p JOIN notifier.webhooks w ON w.id = p.webhook_id "
            "WHERE p.id = $1",
            push_id,
        )
        return Push(**dict(row)) if row else None

    async def record_attempt(
        self, push_id: int, attempt: int, answer: Answer, *, will_retry: bool
    ) -> None:
        state = "delivered" if answer.ok else ("pending" if will_retry else "dropped")
        async with self.pool.acquire() as conn, conn.transaction():
            await conn.execute(
                "INSERT INTO notifier.push_attempts (push_id, attempt, http_status, latency_ms, "
                "response, error, will_retry) VALUES ($1, $2, $3, $4, $5, $6, $7) "
                "ON CONFLICT DO NOTHING",
                push_id,
                attempt,
                answer.status,
                answer.latency_ms,
                answer.excerpt[:1024] or None,
                answer.error,
                will_retry,
            )
            await conn.execute(
                "UPDATE notifier.pushes SET attempts = $2, state = $3, updated_at = now() "
                "WHERE id = $1 AND attempts < $2",
                push_id,
                attempt,
                state,
            )
