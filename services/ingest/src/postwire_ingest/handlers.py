"""ingest's bus subscribers: keep its copy of the suppression lists current, and its
tasks' delivered and failed counts (which the events service counts)."""

from __future__ import annotations

from faststream.rabbit import Channel, RabbitBroker

from postwire_common.broker import topology
from postwire_common.schemas import SuppressionChanges, TaskCount, TaskCounts
from postwire_ingest.store import IngestStore
from postwire_ingest.task_store import TaskStore


def register(broker: RabbitBroker, store: IngestStore, tasks: TaskStore) -> None:
    route = topology.INGEST_SUPPRESSIONS

    @broker.subscriber(
        route.queue,
        route.exchange,
        channel=Channel(prefetch_count=16),
        title="ingest.suppressions",
        description="Suppression list changes: filtered at accept time from then on.",
    )
    async def on_changes(message: SuppressionChanges) -> None:
        await store.apply_suppressions(message.changes)

    @broker.subscriber(
        topology.INGEST_TASK_COUNTS.queue,
        topology.INGEST_TASK_COUNTS.exchange,
        channel=Channel(prefetch_count=16),
        title="ingest.task_counts",
        description="Tasks' delivered and failed counts, as the events service counted them.",
    )
    async def on_counts(message: TaskCounts) -> None:
        for count in newest(message.counts):
            await tasks.record_counts(
                count.tenant_id,
                count.task_id,
                delivered=count.delivered,
                failed=count.failed,
                time=count.time,
            )


def newest(counts: list[TaskCount]) -> list[TaskCount]:
    """One count per task, the newest: the outbox relay may have merged several flushes
    into one message."""
    found: dict[tuple[str, str], TaskCount] = {}
    for count in counts:
        key = (count.tenant_id, count.task_id)
        if key not in found or count.time > found[key].time:
            found[key] = count
    return list(found.values())
