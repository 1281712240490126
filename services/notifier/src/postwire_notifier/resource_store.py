"""The SQL of topics, queues, subscriptions and event rules (schema ``notifier``).

Changes to one account's resources take a transaction-scoped advisory lock on the
account, so limits and the checks between resources (a rule's queue exists, a topic has
no more than its subscriptions) hold under concurrent requests. Another account's
resource is simply not found.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import asyncpg

from postwire_common.crypto import Keyring
from postwire_common.errors import AlreadyExists, InvalidValue, NotAvailable, NotFound
from postwire_common.ids import new_id, new_secret
from postwire_notifier.resources import (
    MAX_QUEUES,
    MAX_RULES,
    MAX_SUBSCRIPTIONS,
    MAX_TOPICS,
    ContentFormat,
    Endpoint,
    EndpointKind,
    Strategy,
    rule_topic,
)


@dataclass(frozen=True, slots=True)
class Queue:
    name: str
    visibility_timeout: int
    message_retention: int
    max_message_size: int


@dataclass(frozen=True, slots=True)
class Subscription:
    topic: str
    name: str
    endpoint: str
    notify_strategy: Strategy
    content_format: ContentFormat


# What the API shows of a queue and of a rule; one account's, by tenant_id = $1.
_QUEUE = (
    "SELECT name, visibility_timeout, message_retention, max_message_size, dropped, "
    "created_at FROM notifier.queues WHERE tenant_id = $1 "
)
_RULE = (
    "SELECT name, event_types, endpoints, topic, undeliverable, created_at "
    "FROM notifier.event_rules WHERE tenant_id = $1 "
)


async def _lock(conn: asyncpg.Connection, tenant_id: str) -> None:
    """Serialise the account's changes; the change notice goes out when (and only if)
    the transaction commits, so every notifier process drops its cached routes."""
    await conn.execute(
        "SELECT pg_advisory_xact_lock(hashtext('resources:' || $1)), "
        "pg_notify('postwire_webhooks', $1)",
        tenant_id,
    )


async def _count(conn: asyncpg.Connection, sql: str, *args: Any) -> int:
    return int(await conn.fetchval(sql, *args))


class ResourceStore:
    def __init__(self, pool: asyncpg.Pool, keyring: Keyring) -> None:
        self.pool = pool
        self._keyring = keyring

    # topics ------------------------------------------------------------------------

    async def create_topic(self, tenant_id: str, name: str) -> None:
        async with self.pool.acquire() as conn, conn.transaction():
            await _lock(conn, tenant_id)
            await self._insert_topic(conn, tenant_id, name, None)

    @staticmethod
    async def _insert_topic(
        conn: asyncpg.Connection, tenant_id: str, name: str, rule: str | None
    ) -> None:
        count = await _count(
            conn, "SELECT count(*) FROM notifier.topics WHERE tenant_id = $1", tenant_id
        )
        if count >= MAX_TOPICS:
            raise NotAvailable(f"an account can have at most {MAX_TOPICS} topics")
        made = await conn.fetchval(
            "INSERT INTO notifier.topics (tenant_id, name, rule) VALUES ($1, $2, $3) "
            "ON CONFLICT DO NOTHING RETURNING 1",
            tenant_id,
            name,
            rule,
        )
        if made is None:
            raise AlreadyExists(f"a topic {name} exists")

    async def topics(self, tenant_id: str) -> list[dict[str, Any]]:
        rows = await self.pool.fetch(
            "SELECT t.name, t.rule, t.created_at, "
            "(SELECT count(*) FROM notifier.subscriptions s "
            " WHERE s.tenant_id = t.tenant_id AND s.topic = t.name) AS subscriptions "
            "FROM notifier.topics t WHERE t.tenant_id = $1 ORDER BY t.name",
            tenant_id,
        )
        return [dict(r) for r in rows]

    async def delete_topic(self, tenant_id: str, name: str) -> None:
        async with self.pool.acquire() as conn, conn.transaction():
            await _lock(conn, tenant_id)
            rule = await conn.fetchrow(
                "SELECT rule FROM notifier.topics WHERE tenant_id = $1 AND name = $2",
                tenant_id,
                name,
            )
            if rule is None:
                raise NotFound(f"no topic {name}")
            if rule["rule"] is not None:
                raise NotAvailable(
                    f"topic {name} belongs to event rule {rule['rule']}; delete the rule"
                )
            await conn.execute(
                "DELETE FROM notifier.topics WHERE tenant_id = $1 AND name = $2", tenant_id, name
            )

    # queues ------------------------------------------------------------------------

    async def create_queue(self, tenant_id: str, queue: Queue) -> None:
        async with self.pool.acquire() as conn, conn.transaction():
            await _lock(conn, tenant_id)
            count = await _count(
                conn, "SELECT count(*) FROM notifier.queues WHERE tenant_id = $1", tenant_id
            )
            if count >= MAX_QUEUES:
                raise NotAvailable(f"an account can have at most {MAX_QUEUES} queues")
            made = await conn.fetchval(
                "INSERT INTO notifier.queues (tenant_id, name, visibility_timeout, "
                "message_retention, max_message_size) VALUES ($1, $2, $3, $4, $5) "
                "ON CONFLICT DO NOTHING RETURNING 1",
                tenant_id,
                queue.name,
                queue.visibility_timeout,
                queue.message_retention,
                queue.max_message_size,
            )
            if made is None:
                raise AlreadyExists(f"a queue {queue.name} exists")

    async def queues(self, tenant_id: str) -> list[dict[str, Any]]:
        rows = await self.pool.fetch(
            _QUEUE + "ORDER BY name",
            tenant_id,
        )
        return [dict(r) for r in rows]

    async def queue(self, tenant_id: str, name: str) -> dict[str, Any]:
        row = await self.pool.fetchrow(
            _QUEUE + "AND name = $2",
            tenant_id,
            name,
        )
        if row is None:
            raise NotFound(f"no queue {name}")
        return dict(row)

    async def delete_queue(self, tenant_id: str, name: str) -> None:
        async with self.pool.acquire() as conn, conn.transaction():
            await _lock(conn, tenant_id)
            users = await conn.fetch(
                "SELECT topic, name FROM notifier.subscriptions "
                "WHERE tenant_id = $1 AND endpoint = $2 ORDER BY topic, name",
                tenant_id,
                f"queue:{name}",
            )
            if users:
                # Deleting it would leave subscriptions pushing into nothing.
                names = ", ".join(f"{u['topic']}/{u['name']}" for u in users)
                raise NotAvailable(
                    f"queue {name} is the endpoint of subscriptions {names}; delete them (or "
                    "their event rule) first"
                )
            gone = await conn.fetchval(
                "DELETE FROM notifier.queues WHERE tenant_id = $1 AND name = $2 RETURNING 1",
                tenant_id,
                name,
            )
            if gone is None:
                raise NotFound(f"no queue {name}")

    # subscriptions -----------------------------------------------------------------

    async def create_subscription(self, tenant_id: str, sub: Subscription) -> str | None:
        """Store the subscription; an HTTP one's app_key (shown to the user once)."""
        async with self.pool.acquire() as conn, conn.transaction():
            await _lock(conn, tenant_id)
            owner = await conn.fetchrow(
                "SELECT rule FROM notifier.topics WHERE tenant_id = $1 AND name = $2",
                tenant_id,
                sub.topic,
            )
            if owner is None:
                raise NotFound(f"no topic {sub.topic}")
            if owner["rule"] is not None:
                raise NotAvailable(
                    f"topic {sub.topic} belongs to event rule {owner['rule']}; its "
                    "subscriptions are the rule's endpoints"
                )
            return await self._insert_subscription(conn, tenant_id, sub, None)

    async def _insert_subscription(
        self, conn: asyncpg.Connection, tenant_id: str, sub: Subscription, rule: str | None
    ) -> str | None:
        count = await _count(
            conn,
            "SELECT count(*) FROM notifier.subscriptions WHERE tenant_id = $1 AND topic = $2",
            tenant_id,
            sub.topic,
        )
        if count >= MAX_SUBSCRIPTIONS:
            raise NotAvailable(f"a topic can have at most {MAX_SUBSCRIPTIONS} subscriptions")
        if sub.endpoint.startswith("queue:"):
            queue = sub.endpoint.removeprefix("queue:")
            exists = await conn.fetchval(
                "SELECT 1 FROM notifier.queues WHERE tenant_id = $1 AND name = $2",
                tenant_id,
                queue,
            )
            if exists is None:
                raise InvalidValue(f"endpoint queue:{queue}: there is no queue {queue}")
        made = await conn.fetchval(
            "INSERT INTO notifier.subscriptions (tenant_id, topic, name, endpoint, "
            "notify_strategy, content_format, rule) VALUES ($1, $2, $3, $4, $5, $6, $7) "
            "ON CONFLICT DO NOTHING RETURNING 1",
            tenant_id,
            sub.topic,
            sub.name,
            sub.endpoint,
            sub.notify_strategy.value,
            sub.content_format.value,
            rule,
        )
        if made is None:
            raise AlreadyExists(f"topic {sub.topic} has a subscription {sub.name}")
        if sub.endpoint.startswith("queue:"):
            return None
        # Pushed by the webhook engine, through a webhook row of its own (migration 0007).
        app_key = new_secret()
        await conn.execute(
            "INSERT INTO notifier.webhooks (id, tenant_id, url, events, app_key, "
            "content_format, notify_strategy, sub_topic, sub_name) "
            "VALUES ($1, $2, $3, '{}', $4, $5, $6, $7, $8)",
            new_id(),
            tenant_id,
            sub.endpoint,
            self._keyring.encrypt(app_key),
            sub.content_format.value,
            sub.notify_strategy.value,
            sub.topic,
            sub.name,
        )
        return app_key

    async def subscriptions(self, tenant_id: str, topic: str) -> list[dict[str, Any]]:
        async with self.pool.acquire() as conn:
            exists = await conn.fetchval(
                "SELECT 1 FROM notifier.topics WHERE tenant_id = $1 AND name = $2",
                tenant_id,
                topic,
            )
            if exists is None:
                raise NotFound(f"no topic {topic}")
            rows = await conn.fetch(
                "SELECT name, endpoint, notify_strategy, content_format, rule, created_at "
                "FROM notifier.subscriptions WHERE tenant_id = $1 AND topic = $2 ORDER BY name",
                tenant_id,
                topic,
            )
        return [dict(r) for r in rows]

    async def delete_subscription(self, tenant_id: str, topic: str, name: str) -> None:
        async with self.pool.acquire() as conn, conn.transaction():
            await _lock(conn, tenant_id)
            row = await conn.fetchrow(
                "SELECT rule FROM notifier.subscriptions "
                "WHERE tenant_id = $1 AND topic = $2 AND name = $3",
                tenant_id,
                topic,
                name,
            )
            if row is None:
                raise NotFound(f"no subscription {name} on topic {topic}")
            if row["rule"] is not None:
                raise NotAvailable(
                    f"subscription {name} belongs to event rule {row['rule']}; delete the rule"
                )
            await conn.execute(
                "DELETE FROM notifier.subscriptions "
                "WHERE tenant_id = $1 AND topic = $2 AND name = $3",
                tenant_id,
                topic,
                name,
            )

    # event rules -------------------------------------------------------------------

    async def create_rule(
        self,
        tenant_id: str,
        name: str,
        event_types: Sequence[str],
        endpoints: Sequence[Endpoint],
        strategy: Strategy,
        content_format: ContentFormat,
    ) -> tuple[str, dict[str, str]]:
        """Store the rule, and for HTTP and queue endpoints its own topic and one
        subscription per endpoint, all or nothing. Returns the topic it publishes to and
        the app_key of each HTTP subscription it made (shown to the user once)."""
        app_keys: dict[str, str] = {}
        async with self.pool.acquire() as conn, conn.transaction():
            await _lock(conn, tenant_id)
            count = await _count(
                conn, "SELECT count(*) FROM notifier.event_rules WHERE tenant_id = $1", tenant_id
            )
            if count >= MAX_RULES:
                raise NotAvailable(f"an account can have at most {MAX_RULES} event rules")
            exists = await conn.fetchval(
                "SELECT 1 FROM notifier.event_rules WHERE tenant_id = $1 AND name = $2",
                tenant_id,
                name,
            )
            if exists is not None:
                raise AlreadyExists(f"an event rule {name} exists")
            if endpoints[0].kind is EndpointKind.TOPIC:
                topic = endpoints[0].target
                found = await conn.fetchval(
                    "SELECT 1 FROM notifier.topics WHERE tenant_id = $1 AND name = $2",
                    tenant_id,
                    topic,
                )
                if found is None:
                    raise InvalidValue(f"endpoints: there is no topic {topic}; create it first")
            else:
                topic = rule_topic(name)
                try:
                    await self._insert_topic(conn, tenant_id, topic, name)
                except AlreadyExists:
                    raise InvalidValue(
                        f"a topic {topic} exists already; the rule would make its own topic "
                        "of that name: delete that topic or name the rule differently"
                    ) from None
                for n, endpoint in enumerate(endpoints, 1):
                    sub = Subscription(
                        topic, f"{endpoint.kind}-{n}", str(endpoint), strategy, content_format
                    )
                    app_key = await self._insert_subscription(conn, tenant_id, sub, name)
                    if app_key is not None:
                        app_keys[sub.name] = app_key
            await conn.execute(
                "INSERT INTO notifier.event_rules (tenant_id, name, event_types, endpoints, "
                "topic) VALUES ($1, $2, $3, $4, $5)",
                tenant_id,
                name,
                list(event_types),
                [str(e) for e in endpoints],
                topic,
            )
            return topic, app_keys

    async def rules(self, tenant_id: str) -> list[dict[str, Any]]:
        rows = await self.pool.fetch(
            _RULE + "ORDER BY name",
            tenant_id,
        )
        return [dict(r) for r in rows]

    async def rule(self, tenant_id: str, name: str) -> dict[str, Any]:
        row = await self.pool.fetchrow(
            _RULE + "AND name = $2",
            tenant_id,
            name,
        )
        if row is None:
            raise NotFound(f"no event rule {name}")
        return dict(row)

    async def routes(self, tenant_ids: Sequence[str]) -> list[dict[str, Any]]:
        """Every rule of these accounts with each subscription of its topic (one row per
        pair; a rule whose topic is gone has one row with ``topic_exists`` false)."""
        rows = await self.pool.fetch(
            "SELECT r.tenant_id, r.name AS rule, r.event_types, r.topic, "
            "t.name IS NOT NULL AS topic_exists, s.name AS subscription, s.endpoint, "
            "s.notify_strategy, s.content_format, w.id AS webhook_id "
            "FROM notifier.event_rules r "
            "LEFT JOIN notifier.topics t ON t.tenant_id = r.tenant_id AND t.name = r.topic "
            "LEFT JOIN notifier.subscriptions s ON s.tenant_id = r.tenant_id "
            "AND s.topic = r.topic "
            "LEFT JOIN notifier.webhooks w ON w.tenant_id = s.tenant_id "
            "AND w.sub_topic = s.topic AND w.sub_name = s.name "
            "WHERE r.tenant_id = ANY($1::text[]) ORDER BY r.tenant_id, r.name, s.name",
            list(tenant_ids),
        )
        return [dict(r) for r in rows]

    async def count_undeliverable(self, counts: dict[tuple[str, str], int]) -> None:
        if counts:
            keys = list(counts)
            await self.pool.execute(
                "UPDATE notifier.event_rules r SET undeliverable = r.undeliverable + u.n "
                "FROM unnest($1::text[], $2::text[], $3::int[]) AS u(t, r, n) "
                "WHERE r.tenant_id = u.t AND r.name = u.r",
                [k[0] for k in keys],
                [k[1] for k in keys],
                [counts[k] for k in keys],
            )

    async def delete_rule(self, tenant_id: str, name: str) -> None:
        """The rule, and what it made (its topic and subscriptions); nothing else."""
        async with self.pool.acquire() as conn, conn.transaction():
            await _lock(conn, tenant_id)
            gone = await conn.fetchval(
                "DELETE FROM notifier.event_rules WHERE tenant_id = $1 AND name = $2 RETURNING 1",
                tenant_id,
                name,
            )
            if gone is None:
                raise NotFound(f"no event rule {name}")
            await conn.execute(
                "DELETE FROM notifier.topics WHERE tenant_id = $1 AND rule = $2", tenant_id, name
            )
