"""delivery's bus subscribers: queue recipients (group commit), wake the lanes; drop the
DKIM keys of deleted domains."""

from __future__ import annotations

from collections.abc import Callable, Sequence

from faststream.rabbit import Channel, RabbitBroker

from postwire_common.batching import Batcher
from postwire_common.broker import topology
from postwire_common.observability.metrics import DELIVERY_DUPLICATES
from postwire_common.schemas import DomainRemoved, OutboundBatches, RecipientBatch
from postwire_delivery.store import DeliveryStore, Queued


def queued(batch: RecipientBatch) -> list[Queued]:
    return [
        Queued(r.env_id, batch.request_id, batch.content_id, batch.tenant_id, batch.sender,
               r.rcpt, r.msg_id, batch.label, batch.recv_time, batch.domain, 1)
        for r in batch.recipients
    ]  # fmt: skip


def register(
    broker: RabbitBroker,
    store: DeliveryStore,
    wake_lanes: Callable[[], None],
) -> None:
    route = topology.DELIVERY_INTAKE

    async def intake(messages: Sequence[OutboundBatches]) -> list[None]:
        given, new = await store.intake([(b, b.domain) for m in messages for b in m.batches])
        if new:
            wake_lanes()
        if given > new:
            DELIVERY_DUPLICATES.inc(given - new)
        return [None] * len(messages)

    recorder: Batcher[OutboundBatches, None] = Batcher(intake, max_size=64)

    @broker.subscriber(
        route.queue,
        route.exchange,
        channel=Channel(prefetch_count=64),
        title="delivery.intake",
        description="Recipients to deliver (ids only): queued in delivery's own table.",
    )
    async def on_recipients(message: OutboundBatches) -> None:
        await recorder.submit(message)

    domains = topology.DELIVERY_DOMAINS

    @broker.subscriber(
        domains.queue,
        domains.exchange,
        title="delivery.domains",
        description="Deleted sender domains: their DKIM keys are dropped.",
    )
    async def on_domain_removed(message: DomainRemoved) -> None:
        await store.remove_domain(message.tenant_id, message.domain)
