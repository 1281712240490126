"""``make_broker(settings)``: a FastStream RabbitBroker set up the one way we use it.

Publishing waits for publisher confirms and raises when a ``mandatory`` message is
returned unroutable (``on_return_raises``), so "published" always means "in a queue".
Metrics come from our lean bus middleware (``observability.bus_metrics``), traces from
FastStream's telemetry middleware when an OTLP endpoint is set; both are shared by every
broker of the process so ``postwire run all`` registers each metric once.
"""

from __future__ import annotations

import logging
from typing import Any

from aiormq.exceptions import ChannelPreconditionFailed
from faststream.rabbit import Channel, RabbitBroker, RabbitQueue

from postwire_common.broker import topology
from postwire_common.broker.consume import BackoffMiddleware
from postwire_common.config import Settings
from postwire_common.observability.bus_metrics import BusMetricsMiddleware
from postwire_common.observability.tracing import broker_tracing_middleware, tracing_enabled


def make_broker(settings: Settings, *, service: str) -> RabbitBroker:
    return RabbitBroker(
        settings.broker_url.get_secret_value(),
        default_channel=Channel(publisher_confirms=True, on_return_raises=True),
        middlewares=(*_observability(), BackoffMiddleware),
        logger=logging.getLogger(f"postwire.{service}.broker"),
        log_level=logging.DEBUG,
        graceful_timeout=30.0,
        app_id=f"postwire-{service}",
        description=f"postwire {service}",
    )


def _observability() -> tuple[Any, ...]:
    # Spans cost ~7% of a busy process; create them only when they are exported.
    if tracing_enabled():
        return (BusMetricsMiddleware, broker_tracing_middleware())
    return (BusMetricsMiddleware,)


class SharedVhost(Exception):
    """Another postwire deployment (another database) uses this RabbitMQ vhost."""


def deployment_marker(identity: str) -> RabbitQueue:
    """A queue (never used for messages) whose dead-letter routing key names the
    deployment's database. RabbitMQ refuses to redeclare a queue with another value of
    that argument (it checks it; it ignores unknown ones), so a second deployment pointed
    at the same vhost fails at start instead of consuming the first one's messages."""
    return RabbitQueue(
        "postwire.deployment",
        durable=True,
        arguments={
            "x-dead-letter-exchange": topology.DEAD.name,
            "x-dead-letter-routing-key": identity,
        },
    )


async def declare_topology(broker: RabbitBroker, *, identity: str) -> None:
    """Declare every exchange, queue and binding (idempotent; arguments never change)."""
    try:
        await broker.declare_queue(deployment_marker(identity))
    except ChannelPreconditionFailed as exc:
        raise SharedVhost(
            "this RabbitMQ vhost belongs to another postwire deployment (another database: "
            f"{exc}); give each deployment its own vhost in POSTWIRE_BROKER_URL, or, if that "
            "deployment is gone for good, delete its marker: rabbitmqctl delete_queue "
            "postwire.deployment -p <vhost>"
        ) from None
    for exchange in topology.EXCHANGES:
        await broker.declare_exchange(exchange)
    for route in topology.ROUTES:
        queue = await broker.declare_queue(route.queue)
        await queue.bind(route.exchange.name, routing_key=route.binding_key)
        dead = topology.dead_queue(route.queue)
        dead_queue = await broker.declare_queue(dead)
        await dead_queue.bind(topology.DEAD.name, routing_key=route.queue.name)
        await broker.declare_queue(topology.parked_queue(route.queue))
