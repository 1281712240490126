"""notifier's bus subscribers: fan event batches out to webhooks."""

from __future__ import annotations

from faststream.rabbit import Channel, RabbitBroker

from postwire_common.broker import topology
from postwire_common.schemas import EventBatch
from postwire_notifier.pushes import Pusher


def register(broker: RabbitBroker, pusher: Pusher) -> None:
    events = topology.NOTIFIER_EVENTS

    @broker.subscriber(
        events.queue,
        events.exchange,
        channel=Channel(prefetch_count=64),
        title="notifier.events",
        description="Every event, once: fanned out into pushes to the account's webhooks.",
    )
    async def on_events(batch: EventBatch) -> None:
        await pusher.fan_out(batch)
