"""Broker users an account makes to consume one of its queues directly over AMQP.

``POST /v1/queues/{name}/credentials`` makes a RabbitMQ user ``acct-<account>-<random>``
with a random password through the management HTTP API, permitted on the deployment's
vhost to *read* that one queue and nothing else (configure and write ``^$``: it cannot
declare, bind, publish or delete). ``basic.consume`` and ``basic.get`` need only read
permission; a passive ``queue.declare`` needs none. Revoking deletes the user: RabbitMQ
closes its open connections at once. The users are rows of ``notifier.queue_credentials``
so an account sees and revokes only its own; deleting the queue revokes them all.
"""

from __future__ import annotations

import builtins
import re
import secrets
from typing import Any
from urllib.parse import quote, unquote, urlsplit, urlunsplit

import asyncpg
import httpx

from postwire_common.errors import InternalError, NotAvailable, NotFound
from postwire_notifier.queue_topology import amqp_name

MAX_CREDENTIALS = 10  # per queue


class ManagementApi:
    """The few calls of RabbitMQ's management HTTP API the credentials need."""

    def __init__(
        self,
        broker_url: str,
        management_url: str,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        parts = urlsplit(broker_url)
        self.vhost = unquote(parts.path[1:]) if len(parts.path) > 1 else "/"
        self._broker = parts
        self._client = httpx.AsyncClient(
            base_url=management_url.rstrip("/") + "/api",
            auth=(unquote(parts.username or "guest"), unquote(parts.password or "guest")),
            timeout=10.0,
            transport=transport,
        )

    def amqp_url(self, username: str, password: str) -> str:
        host = self._broker.hostname or "127.0.0.1"
        netloc = f"{quote(username, safe='')}:{quote(password, safe='')}@{host}"
        if self._broker.port:
            netloc += f":{self._broker.port}"
        return urlunsplit(self._broker._replace(netloc=netloc, query="", fragment=""))

    async def _call(self, method: str, path: str, body: dict[str, Any] | None = None) -> None:
        try:
            answer = await self._client.request(method, path, json=body)
        except httpx.HTTPError as exc:
            raise InternalError(f"the broker's management API is unreachable: {exc}") from None
        if answer.status_code == 404 and method == "DELETE":
            return  # gone already
        if answer.status_code >= 300:
            raise InternalError(
                f"the broker's management API answered {answer.status_code} to {method}"
            )

    async def create_user(self, username: str, password: str, read: str) -> None:
        await self._call(
            "PUT", f"/users/{quote(username, safe='')}", {"password": password, "tags": ""}
        )
        await self._call(
            "PUT",
            f"/permissions/{quote(self.vhost, safe='')}/{quote(username, safe='')}",
            {"configure": "^$", "write": "^$", "read": read},
        )

    async def delete_user(self, username: str) -> None:
        await self._call("DELETE", f"/users/{quote(username, safe='')}")

    async def close(self) -> None:
        await self._client.aclose()


class BrokerUsers:
    def __init__(self, pool: asyncpg.Pool, management: ManagementApi) -> None:
        self.pool = pool
        self.management = management

    async def create(self, tenant_id: str, queue: str) -> dict[str, Any]:
        username = f"acct-{tenant_id}-{secrets.token_hex(6)}"
        password = secrets.token_urlsafe(24)
        async with self.pool.acquire() as conn, conn.transaction():
            await conn.execute(
                "SELECT 1 FROM notifier.queues WHERE tenant_id = $1 AND name = $2 FOR UPDATE",
                tenant_id,
                queue,
            )
            made = await conn.fetchval(
                "SELECT count(*) FROM notifier.queue_credentials WHERE tenant_id = $1 "
                "AND queue = $2",
                tenant_id,
                queue,
            )
            if made >= MAX_CREDENTIALS:
                raise NotAvailable(f"a queue can have at most {MAX_CREDENTIALS} credentials")
            try:
                await conn.execute(
                    "INSERT INTO notifier.queue_credentials (username, tenant_id, queue) "
                    "VALUES ($1, $2, $3)",
                    username,
                    tenant_id,
                    queue,
                )
            except asyncpg.ForeignKeyViolationError:
                raise NotFound(f"no queue {queue}") from None
            name = amqp_name(tenant_id, queue)
            # Created inside the transaction: a failure leaves neither row nor user.
            await self.management.create_user(username, password, f"^{re.escape(name)}$")
        return {
            "username": username,
            "password": password,
            "vhost": self.management.vhost,
            "queue": name,
            "amqp_url": self.management.amqp_url(username, password),
        }

    async def list(self, tenant_id: str, queue: str) -> list[dict[str, Any]]:
        rows = await self.pool.fetch(
            "SELECT username, created_at FROM notifier.queue_credentials "
            "WHERE tenant_id = $1 AND queue = $2 ORDER BY created_at",
            tenant_id,
            queue,
        )
        return [dict(r) for r in rows]

    async def revoke(self, tenant_id: str, queue: str, username: str) -> None:
        async with self.pool.acquire() as conn, conn.transaction():
            gone = await conn.fetchval(
                "DELETE FROM notifier.queue_credentials WHERE tenant_id = $1 AND queue = $2 "
                "AND username = $3 RETURNING 1",
                tenant_id,
                queue,
                username,
            )
            if gone is None:
                raise NotFound(f"no credentials {username} for queue {queue}")
            await self.management.delete_user(username)

    async def delete_users(self, usernames: builtins.list[str]) -> None:
        """The broker users of a queue that was deleted (its rows went with it)."""
        for username in usernames:
            await self.management.delete_user(username)
