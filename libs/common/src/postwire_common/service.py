"""The shape of a service inside a process.

A service owns a database pool, a FastStream broker with its subscribers, its HTTP
routers and any background tasks. It is constructed inside the running event loop with
everything wired (the pool connects and the broker starts in :meth:`Service.start`).
``postwire run <names>`` builds one HTTP app from the services it runs
(``postwire_common.http.app.build_app``) and starts and stops them in its lifespan;
that is the whole process model.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable, Coroutine, Mapping, Sequence
from types import MappingProxyType
from typing import Any

import aio_pika
import asyncpg
from aiormq.exceptions import AMQPError
from fastapi import APIRouter
from faststream.rabbit import RabbitBroker

from postwire_common import db
from postwire_common.broker.factory import SharedVhost, declare_topology, make_broker
from postwire_common.broker.redrive import Redriver
from postwire_common.config import Settings, redact
from postwire_common.http.actions import Action

STARTUP_PATIENCE = 30.0  # seconds to wait for PostgreSQL/RabbitMQ (e.g. pods starting together)


class StartupError(Exception):
    """A service cannot start; the message says what to do."""


async def _retry_connect(connect: Callable[[], Awaitable[object]], *, what: str, hint: str) -> None:
    deadline = time.monotonic() + STARTUP_PATIENCE
    delay = 0.5
    while True:
        try:
            await connect()
            return
        except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError, AMQPError) as exc:
            if time.monotonic() >= deadline:
                raise StartupError(f"{what} is not reachable ({exc}); {hint}") from exc
            logging.getLogger("postwire").warning("waiting for %s", what, extra={"error": str(exc)})
            await asyncio.sleep(delay)
            delay = min(delay * 2, 5.0)


async def _probe_broker(url: str) -> None:
    connection = await aio_pika.connect(url, timeout=5)
    await connection.close()


async def wait_for_dependencies(settings: Settings) -> None:
    """Wait up to ``STARTUP_PATIENCE`` for PostgreSQL and RabbitMQ; StartupError if not."""
    database_url = settings.database_url.get_secret_value()
    broker_url = settings.broker_url.get_secret_value()
    await _retry_connect(
        lambda: db.probe(database_url),
        what=f"PostgreSQL at {redact(database_url)}",
        hint="start it, or point POSTWIRE_DATABASE_URL at it",
    )
    await _retry_connect(
        lambda: _probe_broker(broker_url),
        what=f"RabbitMQ at {redact(broker_url)}",
        hint="start it, or point POSTWIRE_BROKER_URL at it",
    )


class Service:
    """Base of every service: pool, broker, routers, background tasks, readiness."""

    name: str = "service"
    # Work queues this service consumes: their dead letters are re-driven by it.
    consumes: tuple[str, ...] = ()
    # Routes whose bodies may exceed http.limits.DEFAULT_LIMIT: (method, path) -> bytes.
    body_limits: Mapping[tuple[str, str], int] = MappingProxyType({})
    # The vendors' RPC actions it answers at POST / (postwire_common.http.actions).
    actions: Sequence[Action] = ()

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.log = logging.getLogger(f"postwire.{self.name}")
        self.broker: RabbitBroker = make_broker(settings, service=self.name)
        self.pool: asyncpg.Pool = db.new_pool(
            settings.database_url.get_secret_value(), size=settings.db_pool_size
        )
        self._started = False
        self._tasks: list[asyncio.Task[Any]] = []

    @property
    def routers(self) -> Sequence[APIRouter]:
        return ()

    async def start(self) -> None:
        # The runner waited for PostgreSQL and RabbitMQ (once for every service of the
        # process): a pool whose first connect fails is closed for good.
        await self.pool
        self._started = True
        identity = await db.identity(self.pool)
        await self.broker.connect()
        try:
            await declare_topology(self.broker, identity=identity)
        except SharedVhost as exc:
            raise StartupError(str(exc)) from None
        await self.on_start()
        await self.broker.start()
        if self.consumes:
            redriver = Redriver(
                self.settings.broker_url.get_secret_value(),
                self.consumes,
                lambda: db.ping(self.pool),
                interval=self.settings.redrive_interval,
                last_resort=self.last_resort,
            )
            self.spawn(redriver.run(), "redrive")
        self.log.info("started", extra={"service": self.name})

    async def stop(self) -> None:
        await self.broker.stop()  # waits for handlers in flight (graceful_timeout)
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks.clear()
        await self.on_stop()
        if self._started:
            await self.pool.close()
            self._started = False
        self.log.info("stopped", extra={"service": self.name})

    async def last_resort(self, work: str, body: bytes) -> bool:
        """A dead letter re-driven too often: handle it for good (True), or let it be
        parked for an operator (False)."""
        return False

    async def on_start(self) -> None:
        """Set up stores and background work; subscribers start after this."""

    async def on_stop(self) -> None:
        """Tear down what ``on_start`` made."""

    def spawn(self, coro: Coroutine[Any, Any, Any], name: str) -> None:
        self._tasks.append(asyncio.create_task(coro, name=f"{self.name}:{name}"))

    async def readiness(self) -> dict[str, bool]:
        broker_ok = await self.broker.ping(timeout=2.0)
        database_ok = self._started and await db.ping(self.pool)
        return {"broker": bool(broker_ok), "database": bool(database_ok)}
