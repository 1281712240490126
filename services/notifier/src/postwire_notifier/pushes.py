"""Webhook pushes: fan an event out to matching webhooks, then push each with retries.

::

    MailEvent ──matching webhooks──▶ one push row each ──▶ PushDue(push, 1)
    PushDue(push, n) ──already done?──▶ (re-publish the follow-up) done
                     ──POST signed body──▶ 200 within the timeout: delivered
                                          else: PushDue(push, n+1) via notifier.retry.<wait>,
                                                or dropped after the last wait
                     ──record the attempt (status, latency, excerpt, will_retry)

The follow-up is published before the attempt is recorded, so a crash in between can only
repeat a push (receivers de-duplicate by ``token``), never lose its retry.
"""

from __future__ import annotations

import logging

from faststream.rabbit import RabbitBroker

from postwire_common.broker import topology
from postwire_common.broker.publish import Outgoing, publish_all_or_raise
from postwire_common.config import Settings
from postwire_common.observability.metrics import PUSHES
from postwire_common.schemas import MailEvent, PushDue
from postwire_notifier.directory import WebhookDirectory
from postwire_notifier.http_client import Answer, SafeClient
from postwire_notifier.payload import push_body
from postwire_notifier.signature import new_token, signed
from postwire_notifier.store import NotifierStore

log = logging.getLogger("postwire.notifier")


class Pusher:
    def __init__(
        self,
        settings: Settings,
        store: NotifierStore,
        directory: WebhookDirectory,
        client: SafeClient,
        broker: RabbitBroker,
    ) -> None:
        self._settings = settings
        self._store = store
        self._directory = directory
        self._client = client
        self._broker = broker
        self._retry_queues = [
            q.name for q in topology.notifier_retry_queues(settings.webhook_retry_schedule)
        ]

    async def fan_out(self, event: MailEvent) -> None:
        hooks = await self._directory.matching(event.tenant_id, event.event.value)
        if not hooks:
            return
        body = push_body(event, self._settings.region)
        ids = await self._store.create_pushes(
            hooks, event.event_id, body, [new_token() for _ in hooks]
        )
        await publish_all_or_raise(
            self._broker,
            [
                Outgoing(topology.PUSHES.name, topology.PUSH_KEY, PushDue(push_id=i, attempt=1))
                for i in ids
            ],
        )

    async def push(self, due: PushDue) -> None:
        push = await self._store.push(due.push_id)
        if push is None or push.state != "pending" or push.attempts > due.attempt:
            return  # webhook deleted, push ended, or this attempt is long past
        if push.attempts == due.attempt:
            # Attempt recorded, push still pending: its retry may not have been
            # published before a crash. Publishing it again is harmless.
            await self._schedule(due.push_id, due.attempt)
            return
        answer = await self._client.request(
            "POST", push.url, json=signed(push.body, push.app_key, push.token)
        )
        will_retry = not answer.ok and due.attempt <= len(self._retry_queues)
        if will_retry:
            await self._schedule(due.push_id, due.attempt)
        await self._store.record_attempt(due.push_id, due.attempt, answer, will_retry=will_retry)
        self._note(push.webhook_id, due, answer, will_retry)

    async def abandon(self, due: PushDue) -> None:
        """This attempt was dead-lettered after failing to be handled many times: record
        the push as dropped, as after the last retry."""
        answer = Answer(None, 0, error="postwire could not perform this push (internal error)")
        await self._store.record_attempt(due.push_id, due.attempt, answer, will_retry=False)
        log.error("push abandoned after repeated failures", extra={"push_id": due.push_id})

    async def _schedule(self, push_id: int, attempt: int) -> None:
        if attempt > len(self._retry_queues):
            return
        queue = self._retry_queues[attempt - 1]
        await publish_all_or_raise(
            self._broker, [Outgoing("", queue, PushDue(push_id=push_id, attempt=attempt + 1))]
        )

    @staticmethod
    def _note(webhook_id: str, due: PushDue, answer: Answer, will_retry: bool) -> None:
        outcome = "delivered" if answer.ok else ("retry" if will_retry else "dropped")
        PUSHES.labels(outcome).inc()
        level = logging.INFO if answer.ok else logging.WARNING
        log.log(
            level,
            "webhook push %s",
            outcome,
            extra={
                "webhook_id": webhook_id,
                "push_id": due.push_id,
                "attempt": due.attempt,
                "http_status": answer.status,
                "latency_ms": answer.latency_ms,
                "error": answer.error,
            },
        )
