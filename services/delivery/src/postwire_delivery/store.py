"""delivery's SQL, and nowhere else. Tables live in the ``delivery`` schema.

``queue`` holds every recipient that still needs an attempt; ``results`` the terminal
outcome of every recipient that has one; ``attempts`` the history; ``outbox`` the events
to publish. Recording an attempt moves a row between them in one statement, with its
events, so a crash leaves either all of it or none.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

import asyncpg

from postwire_common.broker.outbox import outbox_columns
from postwire_common.broker.publish import Outgoing
from postwire_common.crypto import Keyring
from postwire_common.schemas import RecipientBatch, TlsMode
from postwire_delivery.results import DeliveryResult, Outcome

OUTBOX_TABLE = "delivery.outbox"


@dataclass(frozen=True, slots=True)
class Queued:
    """A recipient claimed for its next attempt."""

    env_id: str
    request_id: str
    content_id: str
    tenant_id: str
    sender: str
    rcpt: str
    msg_id: str
    label: str | None
    recv_time: datetime
    lane: str
    attempt: int
    to_header: str | None = None  # the To header's value, when it has a display name
    dkim_selectors: list[str] | None = None  # keys of the sender's domain to sign with
    tls: TlsMode = TlsMode.OPPORTUNISTIC  # the account's TLS policy when it was accepted

    def __post_init__(self) -> None:
        if not isinstance(self.tls, TlsMode):  # as read from the table
            object.__setattr__(self, "tls", TlsMode(self.tls))

    @property
    def key(self) -> str:
        return self.env_id


@dataclass(frozen=True, slots=True)
class Finished:
    """An attempt's result, and when the recipient is due again after a soft one."""

    item: Queued
    result: DeliveryResult
    retry_in: float | None  # seconds; None when the result is terminal


@dataclass(frozen=True, slots=True)
class Sent:
    """A recipient's terminal result, with whose message it was (for bounce reports)."""

    env_id: str
    outcome: Outcome
    attempt: int
    tenant_id: str
    rcpt: str
    msg_id: str
    sender: str
    label: str | None
    recv_time: datetime


# New recipients, unless they already have a terminal result (a bus message redelivered
# after its recipients were finished) or are queued already.
_INTAKE = """
WITH keys AS (
INSERT INTO delivery.signing_keys (tenant_id, domain, selector, private_key)
SELECT * FROM unnest($14::text[], $15::text[], $16::text[], $17::text[])
ON CONFLICT DO NOTHING
), new AS (
INSERT INTO delivery.queue (env_id, request_id, content_id, tenant_id, sender, rcpt, msg_id,
    label, recv_time, lane, to_header, dkim_selectors, tls)
SELECT u.env_id, u.request_id, u.content_id, u.tenant_id, u.sender, u.rcpt, u.msg_id,
    u.label, u.recv_time, u.lane, u.to_header, string_to_array(nullif(u.dkim, ''), ','), u.tls
FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[],
    $7::text[], $8::text[], $9::timestamptz[], $10::text[], $11::text[], $12::text[],
    $13::text[])
    AS u(env_id, request_id, content_id, tenant_id, sender, rcpt, msg_id, label, recv_time,
        lane, to_header, dkim, tls)
WHERE NOT EXISTS (SELECT 1 FROM delivery.results r WHERE r.env_id = u.env_id)
ON CONFLICT (env_id) DO NOTHING
RETURNING 1
)
SELECT count(*) FROM new
"""

_CLAIM = """
UPDATE delivery.queue q
SET lease_owner = $1, lease_until = now() + make_interval(secs => $2)
FROM (
    SELECT env_id FROM delivery.queue
    WHERE due_at <= now() AND (lease_until IS NULL OR lease_until < now())
        AND lane <> ALL($3::text[])
    ORDER BY due_at
    LIMIT $4
    FOR UPDATE SKIP LOCKED
) c
WHERE q.env_id = c.env_id
RETURNING q.env_id, q.request_id, q.content_id, q.tenant_id, q.sender, q.rcpt, q.msg_id,
    q.label, q.recv_time, q.lane, q.attempt, q.to_header, q.dkim_selectors, q.tls
"""

# One statement for a batch of finished attempts: history, terminal results (and the row
# leaves the queue), soft results (the row waits for its next attempt), their events.
# Only rows still at the attempt that was made are touched, so a stale duplicate changes
# nothing.
_FINISH = """
WITH r AS (
    SELECT * FROM unnest($1::text[], $2::int[], $3::text[], $4::int[], $5::int[], $6::text[],
        $7::text[], $8::float8[], $9::text[], $10::text[], $11::text[], $12::text[],
        $13::text[], $14::timestamptz[])
        AS r(env_id, attempt, outcome, status, code, message, host, retry_in, tenant_id, rcpt,
            msg_id, sender, label, recv_time)
), history AS (
    INSERT INTO delivery.attempts (env_id, attempt, outcome, status, code, message, host)
    SELECT env_id, attempt, outcome, status, code, message, host FROM r
    WHERE NOT EXISTS (
        -- a duplicate comes within a lease or two: look only at recent days' partitions
        SELECT 1 FROM delivery.attempts a WHERE a.env_id = r.env_id AND a.attempt = r.attempt
            AND a.finished_at > now() - interval '2 days'
    )
    ON CONFLICT DO NOTHING
), terminal AS (
    INSERT INTO delivery.results (env_id, attempt, outcome, status, code, message, host,
        finished_at, tenant_id, rcpt, msg_id, sender, label, recv_time)
    SELECT env_id, attempt, outcome, status, code, message, host, now(), tenant_id, rcpt,
        msg_id, sender, label, recv_time FROM r
    WHERE outcome <> 'soft'
    ON CONFLICT (env_id) DO NOTHING
), gone AS (
    DELETE FROM delivery.queue q USING r
    WHERE q.env_id = r.env_id AND q.attempt = r.attempt AND r.outcome <> 'soft'
), again AS (
    UPDATE delivery.queue q
    SET attempt = r.attempt + 1, due_at = now() + make_interval(secs => r.retry_in),
        lease_owner = NULL, lease_until = NULL
    FROM r
    WHERE q.env_id = r.env_id AND q.attempt = r.attempt AND r.outcome = 'soft'
), outbox AS (
    INSERT INTO delivery.outbox (exchange, routing_key, message_id, body)
    SELECT * FROM unnest($15::text[], $16::text[], $17::text[], $18::bytea[])
)
SELECT now()
"""


class DeliveryStore:
    def __init__(self, pool: asyncpg.Pool) -> None:
        self.pool = pool

    async def intake(self, batches: Sequence[tuple[RecipientBatch, str]]) -> tuple[int, int]:
        """Queue the recipients of ``(batch, lane)`` pairs for their first attempt;
        (recipients given, recipients new)."""
        rows = [
            (r.env_id, b.request_id, b.content_id, b.tenant_id, b.sender, r.rcpt, r.msg_id,
             b.label, b.recv_time, lane, r.to, ",".join(k.selector for k in b.dkim),
             b.tls.value)
            for b, lane in batches
            for r in b.recipients
        ]  # fmt: skip
        keys = {
            (b.tenant_id, k.domain, k.selector): k.private_key for b, _ in batches for k in b.dkim
        }
        key_columns = [
            [t for t, _, _ in keys],
            [d for _, d, _ in keys],
            [s for _, _, s in keys],
            list(keys.values()),
        ]
        new = await self.pool.fetchval(
            _INTAKE, *(list(c) for c in zip(*rows, strict=True)), *key_columns
        )
        return len(rows), int(new)

    async def signing_keys(
        self, tenant_id: str, domain: str, selectors: Sequence[str]
    ) -> dict[str, str]:
        """selector -> private key (encrypted as stored) of the account's domain."""
        rows = await self.pool.fetch(
            "SELECT selector, private_key FROM delivery.signing_keys WHERE tenant_id = $1 "
            "AND domain = $2 AND selector = ANY($3::text[])",
            tenant_id,
            domain,
            list(selectors),
        )
        return {r["selector"]: r["private_key"] for r in rows}

    async def rewrite_signing_keys(self, keyring: Keyring, *, rotate: bool) -> int:
        """Encrypt keys stored in plaintext (with ``rotate``, re-encrypt every one with the
        first key); how many were rewritten."""
        rows = await self.pool.fetch(
            "SELECT tenant_id, domain, selector, private_key FROM delivery.signing_keys "
            "WHERE $1 OR private_key NOT LIKE 'fernet:%'",
            rotate,
        )
        changes = keyring.rewrites(
            (((r["tenant_id"], r["domain"], r["selector"]), r["private_key"]) for r in rows),
            rotate=rotate,
        )
        if not changes:
            return 0
        updated = await self.pool.fetchval(
            "WITH done AS (UPDATE delivery.signing_keys k SET private_key = u.new "
            "FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[]) "
            "AS u(t, d, s, old, new) WHERE k.tenant_id = u.t AND k.domain = u.d "
            "AND k.selector = u.s AND k.private_key = u.old RETURNING 1) "
            "SELECT count(*) FROM done",
            [key[0] for key, _, _ in changes],
            [key[1] for key, _, _ in changes],
            [key[2] for key, _, _ in changes],
            [old for _, old, _ in changes],
            [new for _, _, new in changes],
        )
        return int(updated)

    async def claim(
        self, owner: str, limit: int, exclude: Sequence[str], lease: float
    ) -> list[Queued]:
        rows = await self.pool.fetch(_CLAIM, owner, lease, list(exclude), limit)
        return [Queued(**dict(r)) for r in rows]

    async def renew(self, owner: str, keys: Sequence[str], lease: float) -> None:
        await self.pool.execute(
            "UPDATE delivery.queue SET lease_until = now() + make_interval(secs => $3) "
            "WHERE lease_owner = $1 AND env_id = ANY($2::text[])",
            owner,
            list(keys),
            lease,
        )

    async def release(self, owner: str, keys: Sequence[str]) -> None:
        await self.pool.execute(
            "UPDATE delivery.queue SET lease_owner = NULL, lease_until = NULL "
            "WHERE lease_owner = $1 AND env_id = ANY($2::text[])",
            owner,
            list(keys),
        )

    async def finish(self, done: Sequence[Finished], events: Sequence[Outgoing]) -> datetime:
        """Record attempts and queue their events, in one statement; the time recorded."""
        columns: list[list[object]] = [[] for _ in range(14)]
        for f in done:
            item = f.item
            values = (
                item.env_id, item.attempt, f.result.outcome.value, f.result.status,
                f.result.code, f.result.message, f.result.host,
                f.retry_in if f.result.outcome is Outcome.SOFT else None,
                item.tenant_id, item.rcpt, item.msg_id, item.sender, item.label, item.recv_time,
            )  # fmt: skip
            for column, value in zip(columns, values, strict=True):
                column.append(value)
        finished_at: datetime = await self.pool.fetchval(_FINISH, *columns, *outbox_columns(events))
        return finished_at

    async def queued(self, env_id: str) -> Queued | None:
        row = await self.pool.fetchrow(
            "SELECT env_id, request_id, content_id, tenant_id, sender, rcpt, msg_id, label, "
            "recv_time, lane, attempt, to_header, dkim_selectors, tls FROM delivery.queue "
            "WHERE env_id = $1",
            env_id,
        )
        return Queued(**dict(row)) if row else None

    async def result(self, env_id: str) -> DeliveryResult | None:
        row = await self.pool.fetchrow(
            "SELECT outcome, status, code, message, host FROM delivery.results WHERE env_id = $1",
            env_id,
        )
        if row is None:
            return None
        return DeliveryResult(
            Outcome(row["outcome"]), row["status"], row["code"], row["message"], row["host"]
        )

    async def sent(self, env_id: str) -> Sent | None:
        """The terminal result of ``env_id`` with its message's identity; None when it has
        none yet, or it was recorded before results kept the identity."""
        row = await self.pool.fetchrow(
            "SELECT env_id, outcome, attempt, tenant_id, rcpt, msg_id, sender, label, recv_time "
            "FROM delivery.results WHERE env_id = $1 AND tenant_id IS NOT NULL",
            env_id,
        )
        if row is None:
            return None
        return Sent(**{**dict(row), "outcome": Outcome(row["outcome"])})

    async def report(self, env_id: str, kind: str, fmt: str, events: Sequence[Outgoing]) -> bool:
        """Keep the first report of ``kind`` about ``env_id`` and queue its events for the
        outbox relay, in one statement; False (and nothing queued) for a repeated one."""
        new: bool = await self.pool.fetchval(
            "WITH new AS (INSERT INTO delivery.reports (env_id, kind, format) "
            "VALUES ($1, $2, $3) ON CONFLICT DO NOTHING RETURNING 1), "
            "queued AS (INSERT INTO delivery.outbox (exchange, routing_key, message_id, body) "
            "SELECT * FROM unnest($4::text[], $5::text[], $6::text[], $7::bytea[]) "
            "WHERE EXISTS (SELECT 1 FROM new)) "
            "SELECT EXISTS (SELECT 1 FROM new)",
            env_id,
            kind,
            fmt,
            *outbox_columns(events),
        )
        return new

    async def signs_for(self, domain: str) -> bool:
        """Whether mail has been signed for ``domain``: the inbound MX takes reports for it."""
        found: bool = await self.pool.fetchval(
            "SELECT EXISTS (SELECT 1 FROM delivery.signing_keys WHERE domain = $1)", domain
        )
        return found

    async def remove_domain(self, tenant_id: str, domain: str) -> int:
        """The account deleted ``domain``: note it, and drop the keys no queued mail needs
        (:meth:`sweep_removed_domains` drops the others later); how many were dropped."""
        await self.pool.execute(
            "INSERT INTO delivery.removed_domains (tenant_id, domain) VALUES ($1, $2) "
            "ON CONFLICT (tenant_id, domain) DO UPDATE SET removed_at = now()",
            tenant_id,
            domain,
        )
        return await self.sweep_removed_domains(tenant_id, domain)

    async def sweep_removed_domains(
        self, tenant_id: str | None = None, domain: str | None = None, *, keep_days: int = 7
    ) -> int:
        """Drop keys of removed domains that existed at the removal and that no queued mail
        names; forget removals older than ``keep_days``. How many keys were dropped."""
        dropped = await self.pool.fetchval(
            "WITH dropped AS (DELETE FROM delivery.signing_keys k "
            "USING delivery.removed_domains r "
            "WHERE k.tenant_id = r.tenant_id AND k.domain = r.domain "
            "AND k.created_at <= r.removed_at "
            "AND ($1::text IS NULL OR (r.tenant_id = $1 AND r.domain = $2)) "
            "AND NOT EXISTS (SELECT 1 FROM delivery.queue q WHERE q.tenant_id = k.tenant_id "
            "AND k.selector = ANY(q.dkim_selectors) "
            "AND lower(split_part(q.sender, '@', 2)) = k.domain) "
            "RETURNING 1) SELECT count(*) FROM dropped",
            tenant_id,
            domain,
        )
        await self.pool.execute(
            "DELETE FROM delivery.removed_domains "
            "WHERE removed_at < now() - make_interval(days => $1)",
            keep_days,
        )
        return int(dropped)
