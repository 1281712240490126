"""Delivering one ``OutboundMessage``, as named steps that return early.

::

    already terminal?  ──yes──▶ announce the recorded outcome again, done
    claim the attempt  ──finished──▶ announce its recorded outcome again, done
                       ──leased by another worker──▶ requeue when the lease runs out
    route (relay or MX) ──▶ SMTP to each target until one answers
    record the result (terminal results guard against a second delivery)
    announce: delivered / failed event, or a retry copy + soft_bounce event

"Announce" publishes with confirms before the bus message is acked, and event ids are
deterministic (``env_id:attempt:event``), so a crash anywhere repeats at most an
announcement, never an SMTP delivery that was recorded.
"""

from __future__ import annotations

import asyncio
import logging
import time
from datetime import UTC, datetime
from typing import NoReturn

from faststream.exceptions import NackMessage
from faststream.rabbit import RabbitBroker

from postwire_common.broker import topology
from postwire_common.broker.publish import Outgoing, publish_all_or_raise
from postwire_common.config import Settings
from postwire_common.observability.metrics import (
    DELIVERIES,
    DELIVERY_DUPLICATES,
    DELIVERY_SECONDS,
)
from postwire_common.schemas import DeliveryStatus, EventType, MailEvent, OutboundMessage
from postwire_delivery.results import DeliveryResult, Outcome, gave_up, hard, soft
from postwire_delivery.routing import NoRoute, Router
from postwire_delivery.smtp import ConnectFailed, SmtpPool
from postwire_delivery.store import AlreadyFinished, Busy, DeliveryStore, Recorded, Terminal

log = logging.getLogger("postwire.delivery")


class Deliverer:
    def __init__(
        self,
        settings: Settings,
        store: DeliveryStore,
        router: Router,
        smtp: SmtpPool,
        broker: RabbitBroker,
    ) -> None:
        self._settings = settings
        self._store = store
        self._router = router
        self._smtp = smtp
        self._broker = broker
        self._schedule = settings.soft_bounce_schedule
        self._retry_queues = [q.name for q in topology.delivery_retry_queues(self._schedule)]
        # A lease outlives the attempt it covers; after a crash, redelivered copies wait
        # it out (they cannot tell a dead worker from a slow one).
        self._lease = settings.delivery_attempt_timeout * 1.5 + 1.0

    async def handle(self, message: OutboundMessage) -> None:
        claim = await self._store.claim(message.env_id, message.attempt, self._lease)
        if isinstance(claim, Terminal | AlreadyFinished):
            DELIVERY_DUPLICATES.inc()
            await self._announce(message, claim.recorded)
            return
        if isinstance(claim, Busy):
            await self._wait_for_lease(message, claim)
        result = await self._attempt(message)
        if result.outcome is Outcome.SOFT and message.attempt > len(self._schedule):
            result = gave_up(result, message.attempt)
        recorded = await self._store.finish(message.env_id, message.attempt, result)
        log.info(
            "delivery attempt finished",
            extra={
                "env_id": message.env_id,
                "attempt": message.attempt,
                "outcome": result.outcome.value,
                "status": result.status,
                "code": result.code,
                "host": result.host,
                "reply": result.message[:200],
            },
        )
        await self._announce(message, recorded)

    async def abandon(self, message: OutboundMessage) -> None:
        """The message was dead-lettered after failing to be handled many times: end it
        as failed (status 4), so it still reaches a terminal state and is announced."""
        result = hard(
            DeliveryStatus.FAILED,
            "postwire could not process this message (it failed repeatedly; see the "
            "delivery logs for its env_id)",
        )
        recorded = await self._store.abandon(message.env_id, message.attempt, result)
        log.error("message abandoned after repeated failures", extra={"env_id": message.env_id})
        await self._announce(message, recorded)

    @staticmethod
    async def _wait_for_lease(message: OutboundMessage, busy: Busy) -> NoReturn:
        """Another worker holds this attempt (or held it and died): requeue once the lease
        has run out, so the next look either finds the result or takes the attempt."""
        remaining = (busy.lease_until - datetime.now(UTC)).total_seconds()
        log.info(
            "attempt is leased by another worker; waiting",
            extra={"env_id": message.env_id, "attempt": message.attempt, "wait_s": remaining},
        )
        await asyncio.sleep(min(max(remaining, 0.0) + 0.1, 60.0))
        raise NackMessage(requeue=True)

    async def _attempt(self, message: OutboundMessage) -> DeliveryResult:
        started = time.perf_counter()
        try:
            async with asyncio.timeout(self._settings.delivery_attempt_timeout):
                result = await self._route_and_send(message)
        except TimeoutError:
            result = soft(f"attempt timed out after {self._settings.delivery_attempt_timeout:g}s")
        DELIVERY_SECONDS.observe(time.perf_counter() - started)
        DELIVERIES.labels(result.outcome.value).inc()
        return result

    async def _route_and_send(self, message: OutboundMessage) -> DeliveryResult:
        try:
            targets = await self._router.targets(message.rcpt)
        except NoRoute as no_route:
            return no_route.result
        raw = message.raw.encode("ascii")
        failures: list[str] = []
        for target in targets:
            try:
                return await self._smtp.send(target, self._mail_from(message), message.rcpt, raw)
            except ConnectFailed as exc:
                failures.append(str(exc))
        return soft("could not connect: " + "; ".join(failures[:3]))

    def _mail_from(self, message: OutboundMessage) -> str:
        if self._settings.bounce_domain:
            return f"bounce+{message.env_id}@{self._settings.bounce_domain}"  # VERP
        return message.sender

    async def _announce(self, message: OutboundMessage, recorded: Recorded) -> None:
        """Publish what follows from a recorded attempt (idempotent)."""
        result = recorded.result
        items: list[Outgoing] = []
        if result.outcome is Outcome.DELIVERED:
            event = EventType.DELIVERED
        elif result.outcome is Outcome.HARD:
            event = EventType.FAILED
        else:
            event = EventType.SOFT_BOUNCE
            retry = message.model_copy(update={"attempt": recorded.attempt + 1})
            queue = self._retry_queues[recorded.attempt - 1]
            # The retry copy first: once the soft_bounce is out, the retry must exist.
            await publish_all_or_raise(self._broker, [Outgoing("", queue, retry, message.env_id)])
        items.append(
            Outgoing(
                topology.RAW_EVENTS.name,
                event.value,
                self._event(message, recorded, event, recorded.finished_at),
            )
        )
        await publish_all_or_raise(self._broker, items)

    @staticmethod
    def _event(
        message: OutboundMessage, recorded: Recorded, event: EventType, when: datetime
    ) -> MailEvent:
        result = recorded.result
        return MailEvent(
            event_id=f"{message.env_id}:{recorded.attempt}:{event.value}",
            event=event,
            env_id=message.env_id,
            msg_id=message.msg_id,
            tenant_id=message.tenant_id,
            account=message.sender,
            sender=message.sender,
            rcpt=message.rcpt,
            label=message.label,
            status=result.status,
            err_code=result.code,
            err_msg=result.summary,
            attempt=recorded.attempt,
            recv_time=message.recv_time,
            time=when,
        )
