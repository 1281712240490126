"""notifier's bus subscribers: fan event batches out to webhooks and event rules."""

from __future__ import annotations

from faststream.rabbit import Channel, RabbitBroker

from postwire_common.broker import topology
from postwire_common.schemas import EventBatch
from postwire_notifier.notifications import RuleFanout
from postwire_notifier.pushes import Pusher


def register(broker: RabbitBroker, pusher: Pusher, rules: RuleFanout) -> None:
    events = topology.NOTIFIER_EVENTS

    @broker.subscriber(
        events.queue,
        events.exchange,
        channel=Channel(prefetch_count=64),
        title="notifier.events",
        description="Every event, once: fanned out into pushes to the account's webhooks "
        "and to the topics of its event rules.",
    )
    async def on_events(batch: EventBatch) -> None:
        # Both steps are idempotent: a batch handled again adds nothing twice.
        await pusher.fan_out(batch)
        await rules.fan_out(batch)
