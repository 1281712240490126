"""notifier's bus subscribers: fan events out to webhooks; perform due pushes."""

from __future__ import annotations

from faststream.rabbit import Channel, RabbitBroker

from postwire_common.broker import topology
from postwire_common.schemas import MailEvent, PushDue
from postwire_notifier.pushes import Pusher


def register(broker: RabbitBroker, pusher: Pusher, *, concurrency: int) -> None:
    events = topology.NOTIFIER_EVENTS
    pushes = topology.NOTIFIER_PUSHES

    @broker.subscriber(
        events.queue,
        events.exchange,
        channel=Channel(prefetch_count=256),
        title="notifier.events",
        description="Recorded events, to fan out to the account's webhooks.",
    )
    async def on_event(event: MailEvent) -> None:
        await pusher.fan_out(event)

    @broker.subscriber(
        pushes.queue,
        pushes.exchange,
        channel=Channel(prefetch_count=concurrency),
        title="notifier.pushes",
        description="A webhook push attempt that is due (first tries and retries).",
    )
    async def on_push_due(due: PushDue) -> None:
        await pusher.push(due)

    @broker.subscriber(
        topology.dead_queue(pushes.queue),
        topology.DEAD,
        channel=Channel(prefetch_count=8),
        title="notifier.pushes.dead",
        description="Push attempts whose handling failed past the delivery limit: dropped.",
    )
    async def on_dead_push(due: PushDue) -> None:
        await pusher.abandon(due)
