"""events' bus subscribers: record events (group commit across concurrent batches)."""

from __future__ import annotations

from collections.abc import Sequence

from faststream.rabbit import Channel, RabbitBroker

from postwire_common.batching import Batcher
from postwire_common.broker import topology
from postwire_common.observability.metrics import EVENTS_RECORDED
from postwire_common.schemas import EventBatch
from postwire_events.store import EventsStore


def register(broker: RabbitBroker, store: EventsStore, *, concurrency: int) -> None:
    route = topology.EVENTS_LOG

    async def record(batches: Sequence[EventBatch]) -> list[list[bool]]:
        events = [e for b in batches for e in b.events]
        new = iter(await store.record_many(events))
        return [[next(new) for _ in b.events] for b in batches]

    recorder: Batcher[EventBatch, list[bool]] = Batcher(record, max_size=concurrency)

    @broker.subscriber(
        route.queue,
        route.exchange,
        channel=Channel(prefetch_count=concurrency),
        title="events.log",
        description="Every event, once: recorded in the event log and the status view.",
    )
    async def on_events(batch: EventBatch) -> None:
        for event, new in zip(batch.events, await recorder.submit(batch), strict=True):
            if new:
                EVENTS_RECORDED.labels(event.event.value).inc()
