"""Every exchange, queue and binding of postwire, declared once.

::

    postwire.outbound   (direct)  --outbound-->  delivery.intake     [delivery]   RecipientBatch
                                  --domains--->  delivery.domains    [delivery]   DomainRemoved
    postwire.events     (topic)   --#-------->   events.log          [events]     EventBatch
                                  --#-------->   notifier.events     [notifier]   EventBatch
    postwire.suppressions (direct) --changes-->  ingest.suppressions [ingest]     SuppressionChanges
    postwire.tasks      (direct)  --counts---->  ingest.task_counts  [ingest]     TaskCounts
    postwire.dead       (direct)  --<queue>-->   <queue>.dead        (failed past the limit)
                                                 <queue>.parked      (re-driven too often)
    postwire.deployment (queue)   marker: its arguments name the deployment's database

Every event is published once, to ``postwire.events``, and consumed by the events service
and the notifier in parallel. Bus messages carry ids, never MIME: content is in the content
store. Work for outside destinations (recipients' MX hosts, webhook endpoints) waits in
its service's own table, in per-destination lanes (``postwire_common.lanes``), with its
retry times there too; so the bus never holds a message while a destination is slow,
and a retry republishes nothing.

Work queues are quorum queues with an explicit delivery limit; what exceeds it is
dead-lettered at-least-once (which needs ``x-overflow=reject-publish``) to a ``.dead``
queue instead of being dropped, and re-driven from there (``broker/redrive.py``).
Queue arguments cannot change once declared, so a changed queue is a new queue name.
Every service declares the whole topology at start, so a message published while its
consumer is down waits in its queue instead of being returned.
"""

from __future__ import annotations

from dataclasses import dataclass

from faststream.rabbit import ExchangeType, QueueType, RabbitExchange, RabbitQueue

DELIVERY_LIMIT = 50  # infrastructure failures are not counted, see broker/consume.py

OUTBOUND = RabbitExchange("postwire.outbound", type=ExchangeType.DIRECT, durable=True)
EVENTS = RabbitExchange("postwire.events", type=ExchangeType.TOPIC, durable=True)
DEAD = RabbitExchange("postwire.dead", type=ExchangeType.DIRECT, durable=True)
SUPPRESSIONS = RabbitExchange("postwire.suppressions", type=ExchangeType.DIRECT, durable=True)
TASKS = RabbitExchange("postwire.tasks", type=ExchangeType.DIRECT, durable=True)

OUTBOUND_KEY = "outbound"
DOMAINS_KEY = "domains"
SUPPRESSIONS_KEY = "changes"
TASK_COUNTS_KEY = "counts"


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


def parked_name(work: str) -> str:
    """Where a message goes that was re-driven from ``<work>.dead`` too often."""
    return f"{work}.parked"


def parked_queue(work: RabbitQueue) -> RabbitQueue:
    return RabbitQueue(
        parked_name(work.name),
        queue_type=QueueType.QUORUM,
        arguments={"x-overflow": "reject-publish"},
    )


DELIVERY_INTAKE = Route(work_queue("delivery.intake", OUTBOUND_KEY), OUTBOUND, OUTBOUND_KEY)
DELIVERY_DOMAINS = Route(work_queue("delivery.domains", DOMAINS_KEY), OUTBOUND, DOMAINS_KEY)
EVENTS_LOG = Route(work_queue("events.log", "#"), EVENTS, "#")
NOTIFIER_EVENTS = Route(work_queue("notifier.events", "#"), EVENTS, "#")

INGEST_SUPPRESSIONS = Route(
    work_queue("ingest.suppressions", SUPPRESSIONS_KEY), SUPPRESSIONS, SUPPRESSIONS_KEY
)
INGEST_TASK_COUNTS = Route(
    work_queue("ingest.task_counts", TASK_COUNTS_KEY), TASKS, TASK_COUNTS_KEY
)

ROUTES: tuple[Route, ...] = (
    DELIVERY_INTAKE,
    DELIVERY_DOMAINS,
    EVENTS_LOG,
    NOTIFIER_EVENTS,
    INGEST_SUPPRESSIONS,
    INGEST_TASK_COUNTS,
)
EXCHANGES: tuple[RabbitExchange, ...] = (OUTBOUND, EVENTS, DEAD, SUPPRESSIONS, TASKS)
