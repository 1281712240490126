"""delivery's composition root.

Process model: one asyncio loop. The ``delivery.intake`` subscriber writes the recipients
of each ``RecipientBatch`` into delivery's own queue table (group commit) and wakes the
lanes; the lanes (``postwire_common.lanes``) claim due recipients with short, renewed
leases, one lane per recipient domain with its own concurrency, depth and rate, and
deliver them over one shared SMTP connection pool; results are recorded with their events
in one statement, and the outbox relay publishes the events (``EventBatch`` to
``postwire.events``). Soft bounces wait in the table for their next due time: nothing is
republished. A reaper closes idle SMTP sessions. Scale by adding replicas: claims use
``SKIP LOCKED``.
"""

from __future__ import annotations

import asyncio
import uuid

from pydantic import ValidationError

from postwire_common.broker import topology
from postwire_common.broker.outbox import OutboxRelay
from postwire_common.config import Settings
from postwire_common.content import ContentStore
from postwire_common.crypto import keyring
from postwire_common.lanes import Lanes
from postwire_common.partitions import History, Retention
from postwire_common.schemas import OutboundBatches
from postwire_common.service import Service
from postwire_common.tracking.tokens import PURPOSE, TokenSigner
from postwire_delivery import handlers
from postwire_delivery.dkim import Signer
from postwire_delivery.inbound import Reports, serve
from postwire_delivery.lanes import WORKERS_PER_CONNECTION, lane_policy
from postwire_delivery.mta_sts import MtaSts
from postwire_delivery.mta_sts_fetch import PolicyFetcher
from postwire_delivery.pipeline import Deliverer
from postwire_delivery.routing import Router, make_resolver
from postwire_delivery.smtp import SmtpPool
from postwire_delivery.store import OUTBOX_TABLE, DeliveryStore, Queued
from postwire_delivery.tracked import TrackedCopies


def mta_sts(settings: Settings) -> MtaSts | None:
    """MTA-STS when it is on and mail goes to MX hosts (a relay is the next hop itself)."""
    if not settings.mta_sts or settings.relay is not None:
        return None
    return MtaSts(
        PolicyFetcher(
            make_resolver(settings.dns_nameservers),
            allow_private=settings.allow_private_targets,
            ca_file=settings.delivery_ca_file,
            port=settings.mta_sts_port,
        )
    )


class DeliveryService(Service):
    name = "delivery"
    consumes = (topology.DELIVERY_INTAKE.queue.name, topology.DELIVERY_DOMAINS.queue.name)

    def __init__(self, settings: Settings) -> None:
        super().__init__(settings)
        self.smtp = SmtpPool(
            settings.helo_name,
            per_host=settings.delivery_connections_per_host,
            timeout=min(60.0, settings.delivery_attempt_timeout),
            ca_file=settings.delivery_ca_file,
        )
        self.store = DeliveryStore(self.pool)
        self.relay = OutboxRelay(
            self.pool,
            self.broker,
            OUTBOX_TABLE,
            batch=settings.outbox_batch,
            linger=settings.outbox_linger,
        )
        policy = lane_policy(settings)
        contents = ContentStore(self.pool)
        self.deliverer = Deliverer(
            settings,
            self.store,
            contents,
            Router(settings),
            self.smtp,
            self.relay.wake,
            lambda lane: policy(lane).concurrency // WORKERS_PER_CONNECTION,
            Signer(self.store.signing_keys, keyring(settings)),
            mta_sts(settings),
            TrackedCopies(TokenSigner(keyring(settings).derived(PURPOSE))),
        )
        self.lanes: Lanes[Queued] = Lanes(
            self.store,
            self.deliverer.handle,
            policy,
            owner=f"delivery-{uuid.uuid4().hex[:12]}",
            window=settings.delivery_concurrency * 4,
            lease=settings.delivery_lease,
            name="delivery",
            prepare=lambda claimed: contents.prefetch([q.content_id for q in claimed]),
        )
        handlers.register(self.broker, self.store, self.lanes.wake)
        self.reports = Reports(self.store, settings.bounce_domain, self.relay.wake)
        self.inbound: asyncio.Server | None = None
        self.retention = Retention(
            self.pool, [History("delivery.attempts", settings.attempt_retention)]
        )

    async def last_resort(self, work: str, body: bytes) -> bool:
        """Recipients re-driven too often still end: failed (status 4), and announced."""
        try:
            message = OutboundBatches.model_validate_json(body)
        except ValidationError:
            return False  # not ours to read: parked for an operator
        await self.deliverer.abandon([q for b in message.batches for q in handlers.queued(b)])
        return True

    async def on_start(self) -> None:
        await self.retention.run_once()  # today's partitions exist before results come
        self.spawn(self.retention.run(), "retention")
        self.relay.start()
        self.lanes.start()
        self.spawn(self._reap(), "smtp-reaper")
        self.spawn(self._sweep(), "removed-domains")
        if self.settings.inbound_port:
            self.inbound = await serve(
                self.reports,
                self.settings.http_host,
                self.settings.inbound_port,
                self.settings.helo_name,
            )
            self.log.info("inbound MX listening", extra={"port": self.settings.inbound_port})

    async def on_stop(self) -> None:
        if self.inbound is not None:
            self.inbound.close()
        await self.lanes.stop()
        await self.relay.stop()
        await self.smtp.close()

    async def _reap(self) -> None:
        while True:
            await asyncio.sleep(10)
            try:
                await self.smtp.reap_idle()
            except Exception:  # the reaper must outlive any one failure
                self.log.exception("closing idle SMTP sessions failed")

    async def _sweep(self) -> None:
        """Keys of deleted domains that queued mail still needed go once it has left."""
        while True:
            await asyncio.sleep(600)
            try:
                await self.store.sweep_removed_domains()
            except Exception:  # the sweep must outlive any one failure
                self.log.exception("dropping the DKIM keys of deleted domains failed")
