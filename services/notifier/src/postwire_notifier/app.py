"""notifier's composition root.

Process model: one asyncio loop; ``notifier.events`` fans each ``EventBatch`` out into
push rows (one per webhook and event); lanes (``postwire_common.lanes``, one per webhook,
4 pushes at once each) claim due pushes with short leases and push them over one HTTP
client; a failed push is due again after the next wait of the schedule. The same
batches go through the accounts' event rules into their queues (``notifications``):
RabbitMQ quorum queues an account receives over HTTP or consumes over AMQP with broker
users of its own (``amqp_queues``, ``broker_users``); the notifier counts the messages
they drop past retention (consumes ``postwire.acct-expired``).
Consumes
``EventBatch`` from ``postwire.events`` (in parallel with the events service); publishes
the rendered events of queue subscriptions to ``postwire.acct``. Scale by adding
replicas: claims use ``SKIP LOCKED``.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Sequence

from fastapi import APIRouter

from postwire_common.broker import topology
from postwire_common.config import Settings
from postwire_common.crypto import keyring
from postwire_common.lanes import Lanes
from postwire_common.partitions import History, Retention
from postwire_common.service import Service
from postwire_notifier import api, credentials_api, handlers, history_api, resources_api
from postwire_notifier.amqp_queues import AmqpQueues
from postwire_notifier.broker_users import BrokerUsers, ManagementApi
from postwire_notifier.directory import WebhookDirectory
from postwire_notifier.http_client import SafeClient
from postwire_notifier.notifications import RuleFanout
from postwire_notifier.pushes import Pusher, webhook_lane
from postwire_notifier.resource_store import ResourceStore
from postwire_notifier.store import NotifierStore, Push
from postwire_notifier.vendors import mns

log = logging.getLogger("postwire.notifier")

QUEUE_PURGE_INTERVAL = 60.0


class NotifierService(Service):
    name = "notifier"
    consumes = (topology.NOTIFIER_EVENTS.queue.name,)

    def __init__(self, settings: Settings) -> None:
        super().__init__(settings)
        keys = keyring(settings)
        self.store = NotifierStore(self.pool, keys)
        self.client = SafeClient(
            allow_private=settings.allow_private_webhooks, timeout=settings.webhook_timeout
        )
        self.resources = ResourceStore(self.pool, keys)
        self.directory = WebhookDirectory(
            self.store, self.resources, settings.database_url.get_secret_value()
        )
        self.pusher = Pusher(settings, self.store, self.directory, self.client, self._wake)
        self.lanes: Lanes[Push] = Lanes(
            self.store,
            self.pusher.push,
            webhook_lane,
            owner=f"notifier-{uuid.uuid4().hex[:12]}",
            window=settings.notifier_concurrency * 4,
            lease=max(15.0, settings.webhook_timeout * 3),
            name="notifier",
        )
        broker_url = settings.broker_url.get_secret_value()
        self.queues = AmqpQueues(self.pool, broker_url)
        self.management = ManagementApi(broker_url, settings.broker_management_url)
        self.broker_users = BrokerUsers(self.pool, self.management)
        self.rules = RuleFanout(
            self.directory, self.resources, self.queues, self.store, self._wake, settings.region
        )
        handlers.register(self.broker, self.pusher, self.rules)
        self.retention = Retention(
            self.pool,
            [
                History("notifier.pushes", settings.attempt_retention, live="state = 'pending'"),
                History("notifier.push_attempts", settings.attempt_retention),
            ],
        )
        self._routers = [
            api.router(settings, self.store, self.client),
            resources_api.topics_router(self.resources),
            resources_api.queues_router(self.resources, self.queues, self.broker_users),
            credentials_api.router(self.resources, self.broker_users),
            resources_api.rules_router(self.resources),
            history_api.router(self.store),
            mns.router(self.resources, self.queues),  # Aliyun MNS's queue API
        ]

    @property
    def routers(self) -> Sequence[APIRouter]:
        return self._routers

    def _wake(self) -> None:
        self.lanes.wake()

    async def on_start(self) -> None:
        await self.store.rewrite_app_keys(rotate=False)  # rows stored before encryption
        await self.retention.run_once()  # today's partitions exist before pushes are made
        self.spawn(self.retention.run(), "retention")
        self.spawn(self._purge_queues(), "queue-retention")
        await self.queues.start()
        await self.directory.start()
        self.lanes.start()

    async def _purge_queues(self) -> None:
        """Dedup keys, receipts and tombstones past their queue's retention are forgotten."""
        while True:
            await asyncio.sleep(QUEUE_PURGE_INTERVAL)
            try:
                await self.queues.purge()
            except Exception as exc:  # the next round tries again
                log.warning("queue retention round failed", extra={"error": repr(exc)})

    async def on_stop(self) -> None:
        await self.lanes.stop()
        await self.directory.stop()
        await self.client.close()
        await self.queues.stop()
        await self.management.close()
