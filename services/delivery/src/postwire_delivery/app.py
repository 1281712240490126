"""delivery's composition root.

Process model: one asyncio loop; the subscriber of ``delivery.outbound`` works on up to
``POSTWIRE_DELIVERY_CONCURRENCY`` messages at once (the channel's prefetch), sharing
one SMTP connection pool and one DNS cache; a reaper task closes idle SMTP sessions.
Consumes ``OutboundMessage``; publishes ``MailEvent`` (delivered, soft_bounce, failed)
to ``postwire.raw-events`` and retry copies to the ``delivery.retry.*`` queues. Scale by
adding replicas (competing consumers on the quorum queue).
"""

from __future__ import annotations

import asyncio

from postwire_common.config import Settings
from postwire_common.service import Service
from postwire_delivery import handlers
from postwire_delivery.pipeline import Deliverer
from postwire_delivery.routing import Router
from postwire_delivery.smtp import SmtpPool
from postwire_delivery.store import DeliveryStore


class DeliveryService(Service):
    name = "delivery"

    def __init__(self, settings: Settings) -> None:
        super().__init__(settings)
        self.smtp = SmtpPool(
            settings.helo_name,
            per_host=settings.delivery_connections_per_host,
            timeout=min(60.0, settings.delivery_attempt_timeout),
        )
        self.deliverer = Deliverer(
            settings, DeliveryStore(self.pool), Router(settings), self.smtp, self.broker
        )
        handlers.register(self.broker, self.deliverer, concurrency=settings.delivery_concurrency)

    async def on_start(self) -> None:
        self.spawn(self._reap(), "smtp-reaper")

    async def on_stop(self) -> None:
        await self.smtp.close()

    async def _reap(self) -> None:
        while True:
            await asyncio.sleep(10)
            await self.smtp.reap_idle()
