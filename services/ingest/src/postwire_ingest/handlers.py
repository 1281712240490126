"""ingest's bus subscriber: keep its copy of the suppression lists current."""

from __future__ import annotations

from faststream.rabbit import Channel, RabbitBroker

from postwire_common.broker import topology
from postwire_common.schemas import SuppressionChanges
from postwire_ingest.store import IngestStore


def register(broker: RabbitBroker, store: IngestStore) -> None:
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
