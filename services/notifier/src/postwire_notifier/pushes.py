"""Webhook pushes: fan events out to matching webhooks, then push each in its lane.

::

    EventBatch ──matching webhooks──▶ one push row per (webhook, event), due now
                                      (an event announced twice is still one push)
    lanes (one per webhook; postwire_common.lanes) claim due pushes with short leases
    push ──POST signed body──▶ 200 within the timeout: delivered
                              else: due again after the next wait of the schedule,
                                    or dropped after the last one
         ──record the attempt (status, latency, excerpt, will_retry) with the push's
           next state, in one statement for every attempt that ends meanwhile

A slow or failing endpoint fills only its own lane: pushes to other webhooks go on. A
crash between the POST and the record repeats that attempt once its lease runs out
(receivers de-duplicate by ``token``); nothing is lost.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any

from postwire_common.batching import Batcher
from postwire_common.config import Settings
from postwire_common.lanes import LanePolicy
from postwire_common.observability.metrics import PUSHES
from postwire_common.schemas import EventBatch
from postwire_notifier.directory import WebhookDirectory
from postwire_notifier.http_client import Answer, SafeClient
from postwire_notifier.resources import Strategy, retry_waits
from postwire_notifier.signature import new_token, signature_headers, signed
from postwire_notifier.store import Attempt, NotifierStore, Push
from postwire_notifier.webhooks import post_args, push_fields

log = logging.getLogger("postwire.notifier")

CONNECTIONS_PER_WEBHOOK = 4


def webhook_lane(_webhook_id: str) -> LanePolicy:
    # A lane holds at most twice what it pushes at once: an endpoint that hangs then
    # holds 8 of the process's window (4x POSTWIRE_NOTIFIER_CONCURRENCY), not 32, so
    # many hanging endpoints leave room for the healthy ones.
    return LanePolicy(CONNECTIONS_PER_WEBHOOK, 0.0, CONNECTIONS_PER_WEBHOOK * 2)


class Pusher:
    def __init__(
        self,
        settings: Settings,
        store: NotifierStore,
        directory: WebhookDirectory,
        client: SafeClient,
        wake_lanes: Callable[[], None],
    ) -> None:
        self._settings = settings
        self._store = store
        self._directory = directory
        self._client = client
        self._wake_lanes = wake_lanes
        self._schedule = settings.webhook_retry_schedule
        # Group commit: a statement per attempt cost more than the HTTP request itself.
        self._recorder: Batcher[Attempt, None] = Batcher(self._record, max_size=256)

    async def fan_out(self, batch: EventBatch) -> None:
        rows: list[tuple[str, str, datetime, str, dict[str, Any]]] = []
        for event in batch.events:
            hooks = await self._directory.matching(event.tenant_id, event.event.value)
            if hooks:
                region = self._settings.region
                bodies = {f: push_fields(event, region, f) for f in {h.push_format for h in hooks}}
                rows.extend(
                    (h.id, event.event_id, event.time, new_token(), bodies[h.push_format])
                    for h in hooks
                )
        if rows and await self._store.create_pushes(rows):
            self._wake_lanes()

    async def push(self, push: Push) -> None:
        attempt = push.attempts + 1
        if push.content_format is None:  # a webhook: signed, in its format (JSON or form)
            fields = signed(push.body, push.app_key, push.token)
            answer = await self._client.request(
                "POST", push.url, **post_args(fields, push.push_format)
            )
        else:  # a subscription: its message as the body, the signature in headers
            headers = signature_headers(push.app_key, push.token)
            headers["Content-Type"] = push.body["content_type"]
            answer = await self._client.request(
                "POST", push.url, content=push.body["payload"].encode(), headers=headers
            )
        retry_in = None
        if not answer.ok:
            retry_in = self._next_wait(push, attempt)
        await self._recorder.submit(Attempt(push, attempt, answer, retry_in))
        self._note(push, attempt, answer, retry_in is not None)

    async def _record(self, attempts: Sequence[Attempt]) -> list[None]:
        await self._store.record_attempts(attempts)
        return [None] * len(attempts)

    def _next_wait(self, push: Push, attempt: int) -> float | None:
        """Seconds until the next attempt after failed attempt ``attempt``, or None."""
        if push.notify_strategy is None:
            schedule = self._schedule
        else:
            scale = self._settings.subscription_retry_scale
            schedule = [w * scale for w in retry_waits(Strategy(push.notify_strategy))]
        return schedule[attempt - 1] if attempt <= len(schedule) else None

    @staticmethod
    def _note(push: Push, attempt: int, answer: Answer, will_retry: bool) -> None:
        outcome = "delivered" if answer.ok else ("retry" if will_retry else "dropped")
        PUSHES.labels(outcome).inc()
        level = logging.INFO if answer.ok else logging.WARNING
        log.log(
            level,
            "webhook push %s",
            outcome,
            extra={
                "webhook_id": push.webhook_id,
                "push_id": push.id,
                "attempt": attempt,
                "http_status": answer.status,
                "latency_ms": answer.latency_ms,
                "error": answer.error,
            },
        )
