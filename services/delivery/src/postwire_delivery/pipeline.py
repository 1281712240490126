"""Delivering one queued recipient, as named steps that return early.

::

    lane worker takes a claimed recipient
      ──route (relay or MX; with POSTWIRE_MTA_STS, narrowed by the domain's MTA-STS
        policy: enforce keeps the MX hosts it names and requires verified TLS)
        ──▶ no route: a result without reading the content
      ──content (store, cached per request)──▶ a connection of the lane, within the
        byte budget of large messages ──▶ render its copy (To, Message-ID)
      ──SMTP to each target until one answers  (attempt timeout), with TLS as the
        recipient's batch (or an enforce policy) said (require: no verified TLS
        anywhere fails the message)
      ──record──▶ one statement for many recipients (group commit): attempt history,
                  terminal result + leave the queue, or the next due time; the events
                  go to the outbox in the same statement and are published once

Only the SMTP conversation counts against ``POSTWIRE_DELIVERY_ATTEMPT_TIMEOUT``: waiting
for a lane is not part of an attempt. Recording waits out a database outage (the result
is kept in memory and written when PostgreSQL is back) instead of failing the attempt.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import weakref
from collections.abc import AsyncIterator, Callable, Sequence
from datetime import UTC, datetime

from postwire_common.batching import Batcher
from postwire_common.broker import topology
from postwire_common.broker.publish import Outgoing
from postwire_common.config import Settings
from postwire_common.content import ContentMissing, ContentStore, StoredContent, render
from postwire_common.infra import is_infrastructure
from postwire_common.observability.metrics import DELIVERIES, DELIVERY_SECONDS
from postwire_common.schemas import DeliveryStatus, EventBatch, EventType, MailEvent
from postwire_delivery.dkim import Signer
from postwire_delivery.mta_sts import MtaSts
from postwire_delivery.results import DeliveryResult, Outcome, gave_up, hard, soft
from postwire_delivery.routing import NoRoute, Route, Router
from postwire_delivery.smtp import ConnectFailed, SmtpPool, TlsFailed
from postwire_delivery.store import DeliveryStore, Finished, Queued
from postwire_delivery.tracked import TrackedCopies

log = logging.getLogger("postwire.delivery")

IN_FLIGHT_BYTES = 256 * 1024 * 1024  # rendered copies (and the SMTP client's) at once


class ByteBudget:
    """At most ``limit`` bytes held at once by large messages; one holder may exceed it
    alone. Small holds (under ``SMALL``) are not counted: they are most of the traffic,
    and a condition variable per message would cost more than their bytes."""

    SMALL = 1024 * 1024

    def __init__(self, limit: int) -> None:
        self._limit = limit
        self._used = 0
        self._changed = asyncio.Condition()

    @contextlib.asynccontextmanager
    async def hold(self, size: int) -> AsyncIterator[None]:
        if size < self.SMALL:
            yield
            return
        async with self._changed:
            await self._changed.wait_for(lambda: not self._used or self._used + size <= self._limit)
            self._used += size
        try:
            yield
        finally:
            async with self._changed:
                self._used -= size
                self._changed.notify_all()


def no_session(
    rcpt: str, failures: Sequence[ConnectFailed], required_by: str | None = None
) -> DeliveryResult:
    """The result when no target of ``rcpt`` took a session. When TLS was required and
    every target refused it (none was merely unreachable), the message fails at once
    (see :class:`TlsFailed`), naming ``required_by`` (an MTA-STS policy) when that is
    what required it; otherwise it is retried."""
    if failures and all(isinstance(f, TlsFailed) for f in failures):
        domain = rcpt.rpartition("@")[2]
        reasons = "; ".join(str(f) for f in failures[:3])
        why = required_by or f"TLS required for {domain}"
        return hard(DeliveryStatus.FAILED, f"{why}: {reasons}")
    return soft("could not connect: " + "; ".join(str(f) for f in failures[:3]))


EVENT_OF = {
    Outcome.DELIVERED: EventType.DELIVERED,
    Outcome.HARD: EventType.FAILED,
    Outcome.SOFT: EventType.SOFT_BOUNCE,
}


class Deliverer:
    def __init__(
        self,
        settings: Settings,
        store: DeliveryStore,
        contents: ContentStore,
        router: Router,
        smtp: SmtpPool,
        wake_relay: Callable[[], None],
        connections: Callable[[str], int],
        signer: Signer,
        mta_sts: MtaSts | None = None,
        copies: TrackedCopies | None = None,
    ) -> None:
        self._settings = settings
        self._copies = copies  # None: copies are never tracked (tests of other parts)
        self._mta_sts = mta_sts  # None: MTA-STS off, never looked up
        self._signer = signer
        self._store = store
        self._contents = contents
        self._router = router
        self._smtp = smtp
        self._wake_relay = wake_relay
        self._schedule = settings.soft_bounce_schedule
        self._recorder: Batcher[Finished, datetime] = Batcher(self._record, max_size=256)
        self._connections = connections
        self._budget = ByteBudget(IN_FLIGHT_BYTES)
        # One semaphore per lane while it is in use: a lane's workers are twice its
        # connections, so some record results while the others hold connections.
        self._slots: weakref.WeakValueDictionary[str, asyncio.Semaphore] = (
            weakref.WeakValueDictionary()
        )

    async def handle(self, item: Queued) -> None:
        """One attempt for ``item``, recorded before this returns."""
        result = await self._attempt(item)
        retry_in: float | None = None
        if result.outcome is Outcome.SOFT:
            if item.attempt > len(self._schedule):
                result = gave_up(result, item.attempt)
            else:
                retry_in = self._schedule[item.attempt - 1]
        log.info(
            "delivery attempt finished",
            extra={
                "env_id": item.env_id,
                "attempt": item.attempt,
                "outcome": result.outcome.value,
                "status": result.status,
                "code": result.code,
                "host": result.host,
                "reply": result.message[:200],
            },
        )
        await self._record_until_done(Finished(item, result, retry_in))

    async def abandon(self, items: Sequence[Queued]) -> None:
        """These recipients' bus message failed to be handled many times: end those that
        are neither queued nor finished as failed (status 4), so they still reach a
        terminal state and are announced."""
        result = hard(
            DeliveryStatus.FAILED,
            "postwire could not process this message (it failed repeatedly; see the "
            "delivery logs for its env_id)",
        )
        for item in items:
            if await self._store.result(item.env_id) or await self._store.queued(item.env_id):
                continue
            log.error("message abandoned after repeated failures", extra={"env_id": item.env_id})
            await self._record_until_done(Finished(item, result, None))

    # the attempt ------------------------------------------------------------------------

    async def _attempt(self, item: Queued) -> DeliveryResult:
        try:
            route = await self._route(item)
        except NoRoute as no_route:
            return no_route.result  # decided without the content
        try:
            content = await self._contents.get(item.content_id)
        except ContentMissing:
            return hard(DeliveryStatus.FAILED, "the message content is gone (purged)")
        slot = self._slots.get(item.lane)
        if slot is None:
            slot = self._slots[item.lane] = asyncio.Semaphore(self._connections(item.lane))
        started = time.perf_counter()
        try:
            async with slot, self._budget.hold(content.size * 4):
                # A copy is rendered only now, inside the byte budget (the SMTP client
                # makes a few more while it sends): memory follows what is in flight.
                raw = await self._copy(item, content)
                raw = await self._signer.sign(item.tenant_id, item.sender, item.dkim_selectors, raw)
                started = time.perf_counter()  # waiting for a connection is not the attempt
                async with asyncio.timeout(self._settings.delivery_attempt_timeout):
                    result = await self._send(item, route, raw)
        except TimeoutError:
            result = soft(f"attempt timed out after {self._settings.delivery_attempt_timeout:g}s")
        DELIVERY_SECONDS.observe(time.perf_counter() - started)
        DELIVERIES.labels(result.outcome.value).inc()
        return result

    async def _copy(self, item: Queued, content: StoredContent) -> bytes:
        if self._copies is None:
            return render(content, item.rcpt, item.msg_id, item.env_id, item.to_header)
        return await self._copies.render(
            item.content_id,
            content,
            tenant_id=item.tenant_id,
            rcpt=item.rcpt,
            msg_id=item.msg_id,
            env_id=item.env_id,
            to=item.to_header,
        )

    async def _route(self, item: Queued) -> Route:
        """The router's targets and the batch's TLS mode, under the recipient domain's
        MTA-STS policy when that is on; :class:`NoRoute` when there is nowhere to go."""
        targets = await self._router.targets(item.rcpt)
        if self._mta_sts is None:
            return Route(targets, item.tls)
        return await self._mta_sts.route(item.rcpt.rpartition("@")[2], targets, item.tls)

    async def _send(self, item: Queued, route: Route, raw: bytes) -> DeliveryResult:
        failures: list[ConnectFailed] = []
        for target in route.targets:
            try:
                return await self._smtp.send(
                    target, self._mail_from(item), item.rcpt, raw, route.tls
                )
            except ConnectFailed as exc:
                failures.append(exc)
        return no_session(item.rcpt, failures, route.required_by)

    def _mail_from(self, item: Queued) -> str:
        if self._settings.bounce_domain:
            return f"bounce+{item.env_id}@{self._settings.bounce_domain}"  # VERP
        return item.sender

    # recording --------------------------------------------------------------------------

    async def _record_until_done(self, finished: Finished) -> None:
        failures = 0
        while True:
            try:
                await self._recorder.submit(finished)
                return
            except Exception as exc:
                if not is_infrastructure(exc):
                    raise
                failures += 1
                wait = min(30.0, 0.2 * 2 ** min(failures, 8))
                log.warning(
                    "cannot record a delivery result yet; keeping it and retrying",
                    extra={"env_id": finished.item.env_id, "retry_in_s": wait, "error": repr(exc)},
                )
                await asyncio.sleep(wait)

    async def _record(self, done: Sequence[Finished]) -> list[datetime]:
        now = datetime.now(UTC)
        events = [self._event(f, now) for f in done]
        at = await self._store.finish(
            done, [Outgoing(topology.EVENTS.name, "delivery.result", EventBatch(events=events))]
        )
        self._wake_relay()
        return [at] * len(done)

    @staticmethod
    def _event(finished: Finished, when: datetime) -> MailEvent:
        item, result = finished.item, finished.result
        event = EventType.INVALID if result.undeliverable else EVENT_OF[result.outcome]
        return MailEvent(
            event_id=f"{item.env_id}:{item.attempt}:{event.value}",
            event=event,
            env_id=item.env_id,
            msg_id=item.msg_id,
            tenant_id=item.tenant_id,
            account=item.sender,
            sender=item.sender,
            rcpt=item.rcpt,
            label=item.label,
            status=result.status,
            err_code=result.code,
            err_msg=result.summary,
            attempt=item.attempt,
            recv_time=item.recv_time,
            time=when,
        )
