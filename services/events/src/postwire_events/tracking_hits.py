"""A tracking hit becomes an event: written to the outbox, group-committed.

```text
route ─ Hit ─▶ Batcher ─▶ one transaction for the hits that came together:
                           their messages (events.messages, by account and env_id)
                           unsubscribes already made (event log, outbox) left out
                           one EventBatch ─▶ events.outbox ─▶ commit ─▶ wake the relay
                                          ─▶ postwire.events ─▶ events.log, notifier.events
```

The events are published like delivery's results, not recorded here directly: the
notifier must see them too, and this service records them from its own queue like any
other (the unsubscribe's suppression included). Opens and clicks are facts of their
own, each with a fresh id. An unsubscribe has one id per message
(``<env_id>:unsubscribe``); the event log is keyed by id *and* time, so a repeat is
left out here: under a per-message advisory lock, when the log or the outbox already
holds it, or this process made it in the last hour (the moments between its publish and
its recording, when neither holds it).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

import asyncpg

from postwire_common.batching import Batcher
from postwire_common.broker import topology
from postwire_common.broker.outbox import outbox_columns
from postwire_common.broker.publish import Outgoing
from postwire_common.ids import new_id
from postwire_common.schemas import EventBatch, EventType, MailEvent
from postwire_common.tracking.tokens import Claim, Kind
from postwire_common.ttl_cache import TtlCache
from postwire_events.machines import SCANNER_WINDOW, classify

MAX_USER_AGENT = 512
_EVENT = {
    Kind.OPEN: EventType.OPEN,
    Kind.CLICK: EventType.CLICK,
    Kind.UNSUBSCRIBE: EventType.UNSUBSCRIBE,
}

_MESSAGES = """
SELECT m.tenant_id, m.env_id, m.msg_id, m.sender, m.rcpt, m.label, m.recv_time, m.status,
    m.status_time
FROM events.messages m JOIN unnest($1::text[], $2::text[]) AS k(tenant_id, env_id)
    ON m.tenant_id = k.tenant_id AND m.env_id = k.env_id
"""
# Unsubscribes of these messages that were made before: recorded, or still in the outbox
# (bodies are compact JSON: ``"event_id":"<id>"`` is how an event's id appears in one).
_UNSUBSCRIBED = """
SELECT DISTINCT env_id FROM events.event_log
WHERE env_id = ANY($1::text[]) AND event = 'unsubscribe'
UNION
SELECT k.env_id FROM unnest($1::text[]) AS k(env_id)
WHERE EXISTS (SELECT 1 FROM events.outbox o WHERE position(
    convert_to('"event_id":"' || k.env_id || ':unsubscribe"', 'UTF8') IN o.body) > 0)
"""
_LOCK = (
    "SELECT pg_advisory_xact_lock(hashtextextended('postwire.unsubscribe:' || e, 0)) "
    "FROM unnest($1::text[]) AS e"
)
_OUTBOX = (
    "INSERT INTO events.outbox (exchange, routing_key, message_id, body) "
    "SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::bytea[])"
)


@dataclass(frozen=True, slots=True)
class Hit:
    claim: Claim
    method: str
    ip: str | None
    user_agent: str | None
    time: datetime
    url: str | None = None  # the link followed (clicks)


@dataclass(frozen=True, slots=True)
class Message:
    """What a tracking event says of its message (its ``events.messages`` row)."""

    tenant_id: str
    env_id: str
    msg_id: str
    sender: str
    rcpt: str
    label: str | None
    recv_time: datetime
    status: str
    status_time: datetime

    @property
    def delivered_at(self) -> datetime | None:
        return self.status_time if self.status == "delivered" else None


def event_for(hit: Hit, message: Message, window: timedelta = SCANNER_WINDOW) -> MailEvent:
    """The event of ``hit`` on ``message`` (``window``: see machines.classify)."""
    kind = _EVENT[hit.claim.kind]
    if kind is EventType.UNSUBSCRIBE:
        event_id, machine = f"{message.env_id}:unsubscribe", None
    else:
        event_id = f"{message.env_id}:{kind.value}:{new_id()}"
        machine = classify(
            is_open=kind is EventType.OPEN,
            method=hit.method,
            ip=hit.ip,
            user_agent=hit.user_agent,
            at=hit.time,
            delivered_at=message.delivered_at,
            window=window,
        )
    return MailEvent(
        event_id=event_id,
        event=kind,
        env_id=message.env_id,
        msg_id=message.msg_id,
        tenant_id=message.tenant_id,
        account=message.sender,
        sender=message.sender,
        rcpt=message.rcpt,
        label=message.label,
        url=hit.url,
        ip=hit.ip,
        user_agent=hit.user_agent[:MAX_USER_AGENT] if hit.user_agent else None,
        machine=machine,
        recv_time=message.recv_time,
        time=hit.time,
    )


class TrackingHits:
    def __init__(
        self,
        pool: asyncpg.Pool,
        announced: Callable[[], None] = lambda: None,
        *,
        concurrency: int = 256,
        scanner_window: timedelta = SCANNER_WINDOW,
    ) -> None:
        self.pool = pool
        self.scanner_window = scanner_window
        self.announced = announced  # wakes the outbox relay after a commit
        self._batcher: Batcher[Hit, Message | None] = Batcher(self._flush, max_size=concurrency)
        self._unsubscribed: TtlCache[str, bool] = TtlCache(3600.0, max_entries=100_000)

    async def message(self, claim: Claim) -> Message | None:
        """The message ``claim`` is about, if this service knows it (for its account)."""
        rows = await self.pool.fetch(_MESSAGES, [claim.tenant_id], [claim.env_id])
        return Message(**dict(rows[0])) if rows else None

    async def record(self, hit: Hit) -> Message | None:
        """Announce ``hit`` (committed when this returns); its message, or None when the
        message is not known here (nothing is announced then)."""
        return await self._batcher.submit(hit)

    async def _flush(self, hits: Sequence[Hit]) -> list[Message | None]:
        keys = sorted({(h.claim.tenant_id, h.claim.env_id) for h in hits})
        unsubscribing = sorted(
            {
                h.claim.env_id
                for h in hits
                if h.claim.kind is Kind.UNSUBSCRIBE and not self._unsubscribed.get(h.claim.env_id)
            }
        )
        async with self.pool.acquire() as conn, conn.transaction():
            rows = await conn.fetch(_MESSAGES, [k[0] for k in keys], [k[1] for k in keys])
            found = {(r["tenant_id"], r["env_id"]): Message(**dict(r)) for r in rows}
            fresh: set[str] = set()
            if unsubscribing:
                await conn.execute(_LOCK, unsubscribing)  # in order: no deadlock
                made = {r["env_id"] for r in await conn.fetch(_UNSUBSCRIBED, unsubscribing)}
                fresh = set(unsubscribing) - made
            events = []
            for hit in hits:
                message = found.get((hit.claim.tenant_id, hit.claim.env_id))
                if message is None:
                    continue
                if hit.claim.kind is Kind.UNSUBSCRIBE:
                    if message.env_id not in fresh:
                        continue
                    fresh.discard(message.env_id)  # once per batch too
                events.append(event_for(hit, message, self.scanner_window))
            if events:
                outgoing = Outgoing(
                    topology.EVENTS.name, "events.tracking", EventBatch(events=events)
                )
                await conn.execute(_OUTBOX, *outbox_columns([outgoing]))
        for event in events:
            if event.event is EventType.UNSUBSCRIBE:
                self._unsubscribed.put(event.env_id, True)
        if events:
            self.announced()
        return [found.get((h.claim.tenant_id, h.claim.env_id)) for h in hits]
