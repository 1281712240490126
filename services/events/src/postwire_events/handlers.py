"""events' bus subscribers: record raw events (in batches), then publish them as recorded."""

from __future__ import annotations

from faststream.rabbit import Channel, RabbitBroker

from postwire_common.batching import Batcher
from postwire_common.broker import topology
from postwire_common.broker.publish import Outgoing, publish
from postwire_common.observability.metrics import EVENTS_RECORDED
from postwire_common.schemas import MailEvent
from postwire_events.store import EventsStore


def register(broker: RabbitBroker, store: EventsStore, *, concurrency: int) -> None:
    route = topology.EVENTS_RAW
    recorder: Batcher[MailEvent, bool] = Batcher(store.record_many, max_size=concurrency)

    @broker.subscriber(
        route.queue,
        route.exchange,
        channel=Channel(prefetch_count=concurrency),
        title="events.raw",
        description="Events from ingest and delivery, to record and pass on.",
    )
    async def on_raw_event(event: MailEvent) -> None:
        if await recorder.submit(event):
            EVENTS_RECORDED.labels(event.event.value).inc()
        # Published even when already recorded: a crash between commit and publish must
        # not lose the notification; consumers de-duplicate by event_id.
        await publish(
            broker, Outgoing(topology.EVENTS.name, event.event.value, event, event.event_id)
        )
