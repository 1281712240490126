"""Event rules at work: each event goes to the topic of every rule of its account that
names its type, and from the topic to each subscription.

::

    EventBatch ──rules of the accounts (one query per batch)──▶ topic ──▶ subscriptions
        queue:<name>   the event rendered in the subscription's format, enqueued once
                       per (event, topic, subscription), however often it is announced
        http(s)://…    not pushed yet (the next step: the webhook push engine)
        topic gone     counted on the rule as undeliverable

A rule sees every event of its account, whichever API user sent the mail (the seed's
"A grants B sending rights and A sees B's results").
"""

from __future__ import annotations

import logging
from collections import Counter, defaultdict
from typing import Any

from postwire_common.schemas import MNS_EVENT_TYPES, EventBatch
from postwire_notifier import formats
from postwire_notifier.queue_store import Enqueue, QueueStore
from postwire_notifier.resource_store import ResourceStore

log = logging.getLogger("postwire.notifier.rules")


class RuleFanout:
    def __init__(self, resources: ResourceStore, queues: QueueStore, region: str) -> None:
        self._resources = resources
        self._queues = queues
        self._region = region

    async def fan_out(self, batch: EventBatch) -> None:
        tenants = {e.tenant_id for e in batch.events}
        routes: dict[str, list[dict[str, Any]]] = defaultdict(list)
        for row in await self._resources.routes(sorted(tenants)):
            routes[row["tenant_id"]].append(row)
        if not routes:
            return
        enqueue: list[Enqueue] = []
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
                if endpoint is None or not endpoint.startswith("queue:"):
                    continue
                body, content_type = formats.render(route["content_format"], event, self._region)
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
        await self._resources.count_undeliverable(dict(undeliverable))
        if added or undeliverable:
            log.debug(
                "events routed by rules",
                extra={"queued": added, "undeliverable": sum(undeliverable.values())},
            )
