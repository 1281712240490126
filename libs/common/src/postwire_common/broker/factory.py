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

from faststream.rabbit import Channel, RabbitBroker

from postwire_common.broker import topology
from postwire_common.broker.consume import BackoffMiddleware
from postwire_common.config import Settings
from postwire_common.observability.bus_metrics import BusMetricsMiddleware
from postwire_common.observability.tracing import broker_tracing_middleware, tracing_enabled


def make_broker(settings: Settings, *, service: str) -> RabbitBroker:
    return RabbitBroker(
        settings.broker_url,
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


async def declare_topology(broker: RabbitBroker, settings: Settings) -> None:
    """Declare every exchange, queue and binding (idempotent; arguments never change)."""
    for exchange in (
        topology.OUTBOUND,
        topology.RAW_EVENTS,
        topology.EVENTS,
        topology.PUSHES,
        topology.DEAD,
    ):
        await broker.declare_exchange(exchange)
    for route in topology.ROUTES:
        queue = await broker.declare_queue(route.queue)
        await queue.bind(route.exchange.name, routing_key=route.binding_key)
        dead = topology.dead_queue(route.queue)
        dead_queue = await broker.declare_queue(dead)
        await dead_queue.bind(topology.DEAD.name, routing_key=route.queue.name)
    for tier in (
        *topology.delivery_retry_queues(settings.soft_bounce_schedule),
        *topology.notifier_retry_queues(settings.webhook_retry_schedule),
    ):
        await broker.declare_queue(tier)
