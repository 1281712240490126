"""Which webhooks and event-rule routes an event goes to, without a query per event.

Webhooks and rule routes (rule, topic, subscription) per tenant are cached. Every change
of a tenant's webhooks, rules, topics, subscriptions or queues sends
``NOTIFY postwire_webhooks, '<tenant_id>'`` in the changing transaction, and every
notifier process LISTENs on its own connection and drops that tenant's entry when the
notification arrives, so a new webhook receives events from the moment it is committed
(give or take the notification's delivery, milliseconds). While the listening
connection is down, nothing is cached and every lookup queries the database.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import asyncpg

from postwire_notifier.resource_store import ResourceStore
from postwire_notifier.store import NotifierStore, Webhook

log = logging.getLogger("postwire.notifier.directory")

T = TypeVar("T")

CHANNEL = "postwire_webhooks"
_MAX_TENANTS = 100_000


class WebhookDirectory:
    def __init__(self, store: NotifierStore, resources: ResourceStore, database_url: str) -> None:
        self._store = store
        self._resources = resources
        self._database_url = database_url
        self._cache: dict[str, list[Webhook]] = {}
        self._routes: dict[str, list[dict[str, Any]]] = {}
        self._generation = 0
        self._listener: asyncpg.Connection | None = None
        self._reconnect: asyncio.Task[None] | None = None
        self._stopping = False

    async def start(self) -> None:
        await self._listen()

    async def stop(self) -> None:
        self._stopping = True
        if self._reconnect is not None:
            self._reconnect.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._reconnect
        if self._listener is not None:
            with contextlib.suppress(OSError, asyncpg.InterfaceError):
                await self._listener.close()
            self._listener = None

    @property
    def caching(self) -> bool:
        return self._listener is not None and not self._listener.is_closed()

    async def matching(self, tenant_id: str, event: str) -> list[Webhook]:
        hooks = await self._cached(
            self._cache, tenant_id, lambda: self._store.tenant_webhooks(tenant_id)
        )
        return [hook for hook in hooks if event in hook.events]

    async def routes(self, tenant_id: str) -> list[dict[str, Any]]:
        """The tenant's rules, each with every subscription of its topic."""
        return await self._cached(
            self._routes, tenant_id, lambda: self._resources.routes([tenant_id])
        )

    async def _cached(
        self, cache: dict[str, T], tenant_id: str, load: Callable[[], Awaitable[T]]
    ) -> T:
        found = cache.get(tenant_id) if self.caching else None
        if found is None:
            generation = self._generation
            found = await load()
            # Keep the answer only if no change notice arrived while we asked.
            if self.caching and generation == self._generation:
                if len(cache) >= _MAX_TENANTS:
                    cache.clear()
                cache[tenant_id] = found
        return found

    async def _listen(self) -> None:
        connection = await asyncpg.connect(self._database_url)
        connection.add_termination_listener(self._lost)
        await connection.add_listener(CHANNEL, self._changed)
        self._listener = connection
        self._cache.clear()  # changes may have been missed while not listening
        self._routes.clear()

    def _changed(self, _conn: object, _pid: int, _channel: str, tenant_id: str) -> None:
        self._generation += 1
        self._cache.pop(tenant_id, None)
        self._routes.pop(tenant_id, None)

    def _lost(self, _conn: object) -> None:
        self._generation += 1
        self._cache.clear()
        self._routes.clear()
        self._listener = None
        if not self._stopping:
            log.warning("webhook change notices lost; looking webhooks up uncached")
            self._reconnect = asyncio.create_task(self._relisten())

    async def _relisten(self) -> None:
        delay = 1.0
        while not self._stopping:
            await asyncio.sleep(delay)
            try:
                await self._listen()
                log.info("webhook change notices restored")
                return
            except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError):
                delay = min(delay * 2, 30.0)
