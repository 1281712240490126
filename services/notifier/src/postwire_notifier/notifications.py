"""Event rules at work: each event goes to the topic of every rule of its account that
names its type, and from the topic to each subscription.

::

    EventBatch ──rules of the accounts (cached per account)──▶ topic ──▶ subscriptions
        queue:<name>   the event rendered in the subscription's format, enqueued once
                       per (event, topic, subscription), however often it is announced
        http(s)://…    a push row for the subscription's own webhook row: the webhook
                       engine pushes it (lanes, leases, attempts) with the body in the
                       subscription's format, retried on its MNS strategy
        topic gone     counted on the rule as undeliverable

A rule sees every event of its account, whichever API user sent the mail (the seed's
"A grants B sending rights and A sees B's results").
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Callable
from datetime import datetime
from typing import Any

from postwire_common.schemas import MNS_EVENT_TYPES, EventBatch
from postwire_notifier import formats
from postwire_notifier.amqp_queues import AmqpQueues, Enqueue
from postwire_notifier.directory import WebhookDirectory
from postwire_notifier.resource_store import ResourceStore
from postwire_notifier.signature import new_token
from postwire_notifier.store import NotifierStore

log = logging.getLogger("postwire.notifier.rules")


class RuleFanout:
    def __init__(
        self,
        directory: WebhookDirectory,
        resources: ResourceStore,
        queues: AmqpQueues,
        pushes: NotifierStore,
        wake_lanes: Callable[[], None],
        region: str,
    ) -> None:
        self._directory = directory
        self._resources = resources
        self._queues = queues
        self._pushes = pushes
        self._wake_lanes = wake_lanes
        self._region = region

    async def fan_out(self, batch: EventBatch) -> None:
        routes: dict[str, list[dict[str, Any]]] = {}
        for tenant_id in {e.tenant_id for e in batch.events}:
            found = await self._directory.routes(tenant_id)  # cached per tenant
            if found:
                routes[tenant_id] = found
        if not routes:
            return
        enqueue: list[Enqueue] = []
        pushes: list[tuple[str, str, datetime, str, dict[str, Any]]] = []
        undeliverable: Counter[tuple[str, str]] = Counter()
        for event in batch.events:
            kind = MNS_EVENT_TYPES[event.event]
            for route in routes.get(event.tenant_id, ()):
                if kind not in route["event_types"]:
                    continue
                if not route["topic_exists"]:
                    undeliverable[(event.tenant_id, route["rule"])] += 1
                    continue
                endpoint = route["endpoint"]
                if endpoint is None:
                    continue  # a topic without subscriptions
                body, content_type = formats.render(route["content_format"], event, self._region)
                if route["webhook_id"] is not None:
                    payload = {"payload": body.decode(), "content_type": content_type}
                    pushes.append(
                        (route["webhook_id"], event.event_id, event.time, new_token(), payload)
                    )
                    continue
                enqueue.append(
                    Enqueue(
                        event.tenant_id,
                        endpoint.removeprefix("queue:"),
                        f"{event.event_id}|{route['topic']}|{route['subscription']}",
                        body,
                        content_type,
                    )
                )
        added = await self._queues.enqueue(enqueue)
        if pushes and await self._pushes.create_pushes(pushes):
            self._wake_lanes()
        await self._resources.count_undeliverable(dict(undeliverable))
        if added or undeliverable:
            log.debug(
                "events routed by rules",
                extra={"queued": added, "undeliverable": sum(undeliverable.values())},
            )
