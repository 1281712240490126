"""events' composition root.

Process model: one asyncio loop; the ``events.log`` subscriber takes up to 64 event
batches at once and records those that arrive together in one statement (group commit);
the HTTP routes read the status view and event log. Consumes ``EventBatch`` from
``postwire.events`` (the notifier consumes the same events in parallel from its own
queue); publishes nothing yet. Scale by adding replicas: recording is idempotent per
event_id and the status update is conditional, so order between replicas does not matter.
"""

from __future__ import annotations

from collections.abc import Sequence

from fastapi import APIRouter

from postwire_common.broker import topology
from postwire_common.config import Settings
from postwire_common.partitions import History, Retention
from postwire_common.service import Service
from postwire_events import api, handlers
from postwire_events.store import EventsStore


class EventsService(Service):
    name = "events"
    consumes = (topology.EVENTS_LOG.queue.name,)

    def __init__(self, settings: Settings) -> None:
        super().__init__(settings)
        self.store = EventsStore(self.pool)
        handlers.register(self.broker, self.store, concurrency=64)
        self._routers = [api.router(self.store)]
        self.retention = Retention(
            self.pool, [History("events.event_log", settings.event_log_retention)]
        )

    @property
    def routers(self) -> Sequence[APIRouter]:
        return self._routers

    async def on_start(self) -> None:
        await self.retention.run_once()  # today's partitions exist before events arrive
        self.spawn(self.retention.run(), "retention")
