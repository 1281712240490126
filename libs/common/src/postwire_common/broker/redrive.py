"""Re-driving dead-lettered messages once their cause may be gone.

A message lands in ``<queue>.dead`` when its handling failed ``DELIVERY_LIMIT`` times
(infrastructure outages do not count, see ``broker/consume.py``: what is left is a bug,
or a message that cannot be parsed). Every ``POSTWIRE_REDRIVE_INTERVAL`` each service
looks at the dead queues of what it consumes:

- ``postwire_dead_letters{queue=...}`` is set to their depth: alert when it stays above 0;
- if the service is healthy (PostgreSQL answers), each dead message goes back to its work
  queue with ``x-postwire-redriven`` counted up (``postwire_dead_letters_redriven_total``);
- a message re-driven ``MAX_REDRIVES`` times is handed to the service's last resort
  (delivery ends its recipients as failed, so they still reach a terminal state), or
  else parked in ``<queue>.parked`` for an operator, where it is counted too.

Publishing back waits for the broker's confirm before the dead copy is acknowledged, so a
crash in between re-drives a message twice (consumers are idempotent), never loses it.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence

import aio_pika
from aio_pika.abc import AbstractIncomingMessage

from postwire_common.broker import topology
from postwire_common.observability.metrics import DEAD_LETTERS, REDRIVEN

log = logging.getLogger("postwire.redrive")

MAX_REDRIVES = 5
HEADER = "x-postwire-redriven"
PER_ROUND = 500

LastResort = Callable[[str, bytes], Awaitable[bool]]  # (work queue, body) -> handled


class Redriver:
    def __init__(
        self,
        broker_url: str,
        queues: Sequence[str],
        healthy: Callable[[], Awaitable[bool]],
        *,
        interval: float,
        last_resort: LastResort | None = None,
    ) -> None:
        self._url = broker_url
        self._queues = list(queues)
        self._healthy = healthy
        self._interval = interval
        self._last_resort = last_resort

    async def run(self) -> None:
        """Every ``interval`` seconds, until cancelled (a task the service spawns)."""
        while True:
            await asyncio.sleep(self._interval)
            try:
                await self.round()
            except Exception as exc:  # the redriver outlives any one failure
                log.warning("re-driving dead letters failed", extra={"error": repr(exc)})

    async def round(self) -> int:
        """Look at every dead queue once; the number of messages re-driven."""
        connection = await aio_pika.connect(self._url, timeout=10)
        moved = 0
        async with connection:
            channel = await connection.channel(publisher_confirms=True)
            for work in self._queues:
                moved += await self._redrive(channel, work)
        return moved

    async def _redrive(self, channel: aio_pika.abc.AbstractChannel, work: str) -> int:
        dead = await channel.declare_queue(f"{work}.dead", passive=True)
        parked = await channel.declare_queue(topology.parked_name(work), passive=True)
        depth = dead.declaration_result.message_count or 0
        DEAD_LETTERS.labels(dead.name).set(depth)
        DEAD_LETTERS.labels(parked.name).set(parked.declaration_result.message_count or 0)
        if not depth or not await self._healthy():
            return 0
        moved = 0
        for _ in range(min(depth, PER_ROUND)):
            message = await dead.get(no_ack=False, fail=False)
            if message is None:
                break
            await self._one(channel, work, message)
            moved += 1
        REDRIVEN.labels(work).inc(moved)
        log.warning("dead letters re-driven", extra={"queue": work, "count": moved})
        return moved

    async def _one(
        self, channel: aio_pika.abc.AbstractChannel, work: str, message: AbstractIncomingMessage
    ) -> None:
        headers = dict(message.headers or {})
        value = headers.get(HEADER, 0)
        count = value if isinstance(value, int) else 0
        if count >= MAX_REDRIVES:
            if self._last_resort is not None and await self._last_resort(work, message.body):
                await message.ack()
                return
            target = topology.parked_name(work)
        else:
            target = work
            headers[HEADER] = count + 1
        headers.pop("x-death", None)
        await channel.default_exchange.publish(
            aio_pika.Message(
                message.body,
                headers=headers,
                content_type=message.content_type,
                message_id=message.message_id,
                delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
            ),
            routing_key=target,
            mandatory=True,
        )
        await message.ack()
