"""Every exchange, queue, binding and retry tier of postwire, declared once.

::

    postwire.outbound   (direct)  --outbound-->  delivery.outbound   [delivery]
    postwire.raw-events (topic)   --#-------->   events.raw          [events]
    postwire.events     (topic)   --#-------->   notifier.events     [notifier]
    postwire.pushes     (direct)  --push----->   notifier.pushes     [notifier]
    postwire.dead       (direct)  --<queue>-->   <queue>.dead        (poison messages)

    delivery.retry.<delay>  TTL queue, dead-letters into postwire.outbound/outbound
    notifier.retry.<delay>  TTL queue, dead-letters into postwire.pushes/push

Work queues are quorum queues with an explicit delivery limit; what exceeds it is
dead-lettered at-least-once (which needs ``x-overflow=reject-publish``) to a ``.dead``
queue instead of being dropped. Retries wait in one queue per delay with a queue-wide
``x-message-ttl`` (never per-message TTLs in a shared queue, which only expire at the
head). Queue arguments cannot change once declared, so a new delay is a new queue name.
Every service declares the whole topology at start, so a message published while its
consumer is down waits in its queue instead of being returned.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from faststream.rabbit import ExchangeType, QueueType, RabbitExchange, RabbitQueue

DELIVERY_LIMIT = 50  # handlers back off on infrastructure errors, see broker/consume.py

OUTBOUND = RabbitExchange("postwire.outbound", type=ExchangeType.DIRECT, durable=True)
RAW_EVENTS = RabbitExchange("postwire.raw-events", type=ExchangeType.TOPIC, durable=True)
EVENTS = RabbitExchange("postwire.events", type=ExchangeType.TOPIC, durable=True)
PUSHES = RabbitExchange("postwire.pushes", type=ExchangeType.DIRECT, durable=True)
DEAD = RabbitExchange("postwire.dead", type=ExchangeType.DIRECT, durable=True)

OUTBOUND_KEY = "outbound"
PUSH_KEY = "push"


@dataclass(frozen=True)
class Route:
    """A work queue, the exchange it is bound to and its binding key."""

    queue: RabbitQueue
    exchange: RabbitExchange
    binding_key: str


def work_queue(name: str, binding_key: str) -> RabbitQueue:
    return RabbitQueue(
        name,
        queue_type=QueueType.QUORUM,
        routing_key=binding_key,
        arguments={
            "x-delivery-limit": DELIVERY_LIMIT,
            "x-dead-letter-exchange": DEAD.name,
            "x-dead-letter-routing-key": name,
            "x-dead-letter-strategy": "at-least-once",
            "x-overflow": "reject-publish",
        },
    )


def dead_queue(work: RabbitQueue) -> RabbitQueue:
    return RabbitQueue(
        f"{work.name}.dead",
        queue_type=QueueType.QUORUM,
        routing_key=work.name,
        arguments={"x-overflow": "reject-publish"},
    )


def retry_queue(prefix: str, delay: float, target: Route) -> RabbitQueue:
    """The queue where messages wait ``delay`` seconds before going back to ``target``."""
    millis = max(1, round(delay * 1000))
    return RabbitQueue(
        f"{prefix}.retry.{format_delay(millis)}",
        queue_type=QueueType.QUORUM,
        arguments={
            "x-message-ttl": millis,
            "x-dead-letter-exchange": target.exchange.name,
            "x-dead-letter-routing-key": target.binding_key,
            "x-dead-letter-strategy": "at-least-once",
            "x-overflow": "reject-publish",
        },
    )


def format_delay(millis: int) -> str:
    """A queue-name-friendly delay: ``90000`` -> ``"90s"``, ``3600000`` -> ``"1h"``."""
    for unit, size in (("h", 3_600_000), ("m", 60_000), ("s", 1000)):
        if millis % size == 0:
            return f"{millis // size}{unit}"
    return f"{millis}ms"


DELIVERY_OUTBOUND = Route(work_queue("delivery.outbound", OUTBOUND_KEY), OUTBOUND, OUTBOUND_KEY)
EVENTS_RAW = Route(work_queue("events.raw", "#"), RAW_EVENTS, "#")
NOTIFIER_EVENTS = Route(work_queue("notifier.events", "#"), EVENTS, "#")
NOTIFIER_PUSHES = Route(work_queue("notifier.pushes", PUSH_KEY), PUSHES, PUSH_KEY)

ROUTES: tuple[Route, ...] = (DELIVERY_OUTBOUND, EVENTS_RAW, NOTIFIER_EVENTS, NOTIFIER_PUSHES)


def delivery_retry_queues(schedule: Iterable[float]) -> list[RabbitQueue]:
    return [retry_queue("delivery", delay, DELIVERY_OUTBOUND) for delay in schedule]


def notifier_retry_queues(schedule: Iterable[float]) -> list[RabbitQueue]:
    return [retry_queue("notifier", delay, NOTIFIER_PUSHES) for delay in schedule]
