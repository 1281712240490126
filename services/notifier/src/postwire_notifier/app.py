"""notifier's composition root.

Process model: one asyncio loop; ``notifier.events`` fans each event out into push rows
and ``PushDue`` messages; ``notifier.pushes`` performs up to
``POSTWIRE_NOTIFIER_CONCURRENCY`` pushes at once over one HTTP client; failed pushes wait
in ``notifier.retry.<wait>`` queues. Consumes ``MailEvent`` (``postwire.events``) and
``PushDue``; publishes ``PushDue``. Scale by adding replicas.
"""

from __future__ import annotations

from collections.abc import Sequence

from fastapi import APIRouter

from postwire_common.config import Settings
from postwire_common.service import Service
from postwire_notifier import api, handlers
from postwire_notifier.directory import WebhookDirectory
from postwire_notifier.http_client import SafeClient
from postwire_notifier.pushes import Pusher
from postwire_notifier.store import NotifierStore


class NotifierService(Service):
    name = "notifier"

    def __init__(self, settings: Settings) -> None:
        super().__init__(settings)
        self.store = NotifierStore(self.pool)
        self.client = SafeClient(
            allow_private=settings.allow_private_targets, timeout=settings.webhook_timeout
        )
        self.directory = WebhookDirectory(self.store, settings.database_url)
        self.pusher = Pusher(settings, self.store, self.directory, self.client, self.broker)
        handlers.register(self.broker, self.pusher, concurrency=settings.notifier_concurrency)
        self._routers = [api.router(settings, self.store, self.client)]

    @property
    def routers(self) -> Sequence[APIRouter]:
        return self._routers

    async def on_start(self) -> None:
        await self.directory.start()

    async def on_stop(self) -> None:
        await self.directory.stop()
        await self.client.close()
