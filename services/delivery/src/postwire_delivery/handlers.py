"""delivery's bus subscribers: parse, call the pipeline; errors requeue with backoff."""

from __future__ import annotations

from faststream.rabbit import Channel, RabbitBroker

from postwire_common.broker import topology
from postwire_common.schemas import OutboundMessage
from postwire_delivery.pipeline import Deliverer


def register(broker: RabbitBroker, deliverer: Deliverer, *, concurrency: int) -> None:
    route = topology.DELIVERY_OUTBOUND

    @broker.subscriber(
        route.queue,
        route.exchange,
        channel=Channel(prefetch_count=concurrency),
        title="delivery.outbound",
        description="One recipient's mail to deliver (first attempts and retries).",
    )
    async def on_outbound(message: OutboundMessage) -> None:
        await deliverer.handle(message)

    @broker.subscriber(
        topology.dead_queue(route.queue),
        topology.DEAD,
        channel=Channel(prefetch_count=8),
        title="delivery.outbound.dead",
        description="Mail whose handling failed past the delivery limit: ended as failed.",
    )
    async def on_dead(message: OutboundMessage) -> None:
        await deliverer.abandon(message)
