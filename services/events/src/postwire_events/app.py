"""events' composition root.

Process model: one asyncio loop; the ``events.log`` subscriber takes up to 64 event
batches at once and records those that arrive together in one statement (group commit);
the HTTP routes read the status view and event log, and keep suppression lists. Consumes
``EventBatch`` from ``postwire.events`` (the notifier consumes the same events in parallel
from its own queue); publishes ``SuppressionChanges`` (to ingest) through its outbox,
written in the transaction that changes a list: hard bounces, complaints and unsubscribes
as their events are recorded, and the API's additions and removals; and ``TaskCounts``
(to ingest): each task's delivered and failed counts change in the transaction that moves
a message's status, and a flusher task writes the changed ones to the outbox at most once
a second (``task_counts.py``); and the open, click and unsubscribe events of the tracking
URLs (``tracking_api.py``), through the same outbox, to ``postwire.events``. Scale by
adding replicas: recording is idempotent per event_id and the status update is
conditional, so order between replicas does not matter; flushers skip each other's rows.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta

from fastapi import APIRouter

from postwire_common.broker import topology
from postwire_common.broker.outbox import OutboxRelay
from postwire_common.config import Settings
from postwire_common.content import ContentStore
from postwire_common.crypto import keyring
from postwire_common.partitions import History, Retention
from postwire_common.service import Service
from postwire_common.tracking import tokens
from postwire_events import api, events_api, handlers, stats_api, suppressions_api, tracking_api
from postwire_events.store import EventsStore
from postwire_events.suppression_store import OUTBOX_TABLE, SuppressionStore
from postwire_events.task_count_store import TaskCountStore
from postwire_events.task_counts import TaskCountsFlusher
from postwire_events.tracking_api import Links
from postwire_events.tracking_hits import TrackingHits
from postwire_events.vendors import aliyun, tencent


class EventsService(Service):
    name = "events"
    consumes = (topology.EVENTS_LOG.queue.name,)

    def __init__(self, settings: Settings) -> None:
        super().__init__(settings)
        self.relay = OutboxRelay(
            self.pool,
            self.broker,
            OUTBOX_TABLE,
            batch=settings.outbox_batch,
            linger=settings.outbox_linger,
        )
        self.counts = TaskCountsFlusher(TaskCountStore(self.pool).flush, self.relay.wake)
        self.store = EventsStore(self.pool, announced=self.relay.wake, counted=self.counts.wake)
        handlers.register(self.broker, self.store, concurrency=64)
        suppressions = SuppressionStore(self.pool, announced=self.relay.wake)
        self._routers = [api.router(self.store), suppressions_api.router(suppressions)]
        self._routers += [stats_api.router(self.pool), events_api.router(self.store)]
        self.actions = [
            *aliyun.actions(self.pool, self.store),
            *tencent.actions(self.store, self.pool),
        ]
        # Tracking URLs (tracking_api.py): their hits become events through the outbox.
        signer = tokens.TokenSigner(keyring(settings).derived(tokens.PURPOSE))
        hits = TrackingHits(
            self.pool,
            announced=self.relay.wake,
            scanner_window=timedelta(seconds=settings.tracking_scanner_window),
        )
        self._routers.append(
            tracking_api.router(signer, hits, Links(ContentStore(self.pool, cache_bytes=16 << 20)))
        )
        self.retention = Retention(
            self.pool, [History("events.event_log", settings.event_log_retention)]
        )

    @property
    def routers(self) -> Sequence[APIRouter]:
        return self._routers

    async def on_start(self) -> None:
        await self.retention.run_once()  # today's partitions exist before events arrive
        self.spawn(self.retention.run(), "retention")
        self.spawn(self.counts.run(), "task counts")
        self.relay.start()

    async def stop(self) -> None:
        await self.relay.stop()  # while the broker connection it publishes on is up
        await super().stop()
