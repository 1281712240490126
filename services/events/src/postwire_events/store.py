"""events' SQL, and nowhere else. Tables live in the ``events`` schema."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import asyncpg

from postwire_common.schemas import MailEvent
from postwire_events import suppression_store, task_count_store
from postwire_events.status import TERMINAL_RANK, status_of
from postwire_events.suppressions import from_events
from postwire_events.task_counts import COUNTED_AS, Ended

# One statement for a whole batch of events: log the new ones, then create or advance
# each message's row with the winning status of the batch (merged in Python first: one
# statement cannot update a row twice). Forward only: a higher rank wins, equal ranks
# below terminal go by time, terminal never changes. Rows are written in key order so
# concurrent batches of several replicas lock in the same order. It also returns the
# rows it leaves with a task and a counted status, with what each counted until now
# (the upsert leaves ``counted`` as it was; see task_counts.py).
_RECORD_MANY = """
WITH logged AS (
    INSERT INTO events.event_log (event_id, env_id, tenant_id, event, time, status,
        err_code, err_msg, url, attempt)
    SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::timestamptz[],
        $6::int[], $7::int[], $8::text[], $9::text[], $10::int[])
    ON CONFLICT (event_id, time) DO NOTHING
    RETURNING event_id
), status AS (
    INSERT INTO events.messages AS m (env_id, tenant_id, msg_id, sender, rcpt, subject,
        label, status, status_rank, status_time, status_code, err_code, err_msg, recv_time,
        method, template_id, task_id)
    SELECT * FROM unnest($11::text[], $12::text[], $13::text[], $14::text[], $15::text[],
        $16::text[], $17::text[], $18::text[], $19::int[], $20::timestamptz[], $21::int[],
        $22::int[], $23::text[], $24::timestamptz[], $25::text[], $26::text[], $27::text[])
    ON CONFLICT (env_id) DO UPDATE SET
        subject = COALESCE(m.subject, EXCLUDED.subject),
        label = COALESCE(m.label, EXCLUDED.label),
        method = COALESCE(m.method, EXCLUDED.method),
        template_id = COALESCE(m.template_id, EXCLUDED.template_id),
        task_id = COALESCE(m.task_id, EXCLUDED.task_id),
        status = CASE WHEN adv THEN EXCLUDED.status ELSE m.status END,
        status_rank = CASE WHEN adv THEN EXCLUDED.status_rank ELSE m.status_rank END,
        status_time = CASE WHEN adv THEN EXCLUDED.status_time ELSE m.status_time END,
        status_code = CASE WHEN adv THEN EXCLUDED.status_code ELSE m.status_code END,
        err_code = CASE WHEN adv THEN EXCLUDED.err_code ELSE m.err_code END,
        err_msg = CASE WHEN adv THEN EXCLUDED.err_msg ELSE m.err_msg END,
        updated_at = now()
    RETURNING env_id, tenant_id, task_id, status, counted
)
SELECT event_id, NULL AS env_id, NULL AS tenant_id, NULL AS task_id, NULL AS status,
    NULL AS counted
FROM logged
UNION ALL
SELECT NULL, env_id, tenant_id, task_id, status, counted FROM status
WHERE task_id IS NOT NULL AND status = ANY($28::text[])
""".replace(
    "adv",
    "(EXCLUDED.status_rank > m.status_rank OR (EXCLUDED.status_rank = m.status_rank "
    f"AND m.status_rank < {TERMINAL_RANK} AND EXCLUDED.status_time >= m.status_time))",
)


def merge_status(events: Sequence[MailEvent]) -> list[tuple[Any, ...]]:
    """One status row per message: the batch's winning event (by rank, then time), with
    subject, label, method, template and task from whichever event carries them (the
    request event). Applying a duplicate again is harmless: the forward-only rule leaves
    the row as it is."""
    rows: dict[str, tuple[Any, ...]] = {}
    extras: dict[str, tuple[Any, ...]] = {}
    for e in events:
        known = extras.get(e.env_id, (None,) * 5)
        given = (e.subject, e.label, e.method, e.template_id, e.task_id)
        extras[e.env_id] = tuple(k or g for k, g in zip(known, given, strict=True))
        status = status_of(e)
        if status is None:
            continue
        current = rows.get(e.env_id)
        if current is not None and (current[8], current[9]) >= (status[1], e.time):
            continue
        rows[e.env_id] = (
            e.env_id, e.tenant_id, e.msg_id, e.sender, e.rcpt, None, None,
            status[0], status[1], e.time, e.status, e.err_code, e.err_msg, e.recv_time,
            None, None, None,
        )  # fmt: skip
    merged = []
    for env_id in sorted(rows):
        row = list(rows[env_id])
        subject, label, method, template_id, task_id = extras[env_id]
        row[5], row[6] = subject, label
        row[14], row[15], row[16] = method, template_id, task_id
        merged.append(tuple(row))
    return merged


@dataclass(frozen=True)
class MessageQuery:
    tenant_id: str
    since: datetime | None = None
    until: datetime | None = None
    status: str | None = None
    rcpt: str | None = None
    sender: str | None = None
    subject: str | None = None
    label: str | None = None
    method: str | None = None
    template_id: str | None = None
    task_id: str | None = None
    limit: int = 50
    after: tuple[datetime, str] | None = None  # cursor: (recv_time, env_id) of the last row


class EventsStore:
    def __init__(
        self,
        pool: asyncpg.Pool,
        announced: Callable[[], None] = lambda: None,
        counted: Callable[[], None] = lambda: None,
    ) -> None:
        self.pool = pool
        self.announced = announced  # wakes the outbox relay
        self.counted = counted  # wakes the task counts flusher

    async def record_many(self, events: Sequence[MailEvent]) -> list[bool]:
        """Log ``events`` and apply them to their messages' status, in one statement;
        for each event, whether it was new."""
        logged = sorted({e.event_id: e for e in events}.values(), key=lambda e: e.event_id)
        rows = merge_status(events)
        columns: list[list[Any]] = (
            [list(c) for c in zip(*rows, strict=True)] if rows else [[] for _ in range(17)]
        )
        async with self.pool.acquire() as conn, conn.transaction():
            new, ended = await self._record(conn, logged, columns)
            # New events only: a redelivered bounce must not undo a manual removal.
            added = await suppression_store.add(
                conn, from_events([e for e in logged if e.event_id in new])
            )
            # Last: a big task's row is hot, so its lock is held only until the commit.
            counted = await task_count_store.add(conn, ended)
        if added:
            self.announced()
        if counted:
            self.counted()
        seen: set[str] = set()
        result = []
        for e in events:  # a duplicate within the batch is new only once
            result.append(e.event_id in new and e.event_id not in seen)
            seen.add(e.event_id)
        return result

    @staticmethod
    async def _record(
        conn: asyncpg.Connection, logged: Sequence[MailEvent], columns: list[list[Any]]
    ) -> tuple[set[str], list[Ended]]:
        """The ids of the new events, and the task messages left with a counted status."""
        rows = await conn.fetch(
            _RECORD_MANY,
            [e.event_id for e in logged],
            [e.env_id for e in logged],
            [e.tenant_id for e in logged],
            [e.event.value for e in logged],
            [e.time for e in logged],
            [e.status for e in logged],
            [e.err_code for e in logged],
            [e.err_msg for e in logged],
            [e.url for e in logged],
            [e.attempt for e in logged],
            *columns,
            list(COUNTED_AS),
        )
        new = {r["event_id"] for r in rows if r["event_id"] is not None}
        ended = [
            Ended(r["env_id"], r["tenant_id"], r["task_id"], r["status"], r["counted"])
            for r in rows
            if r["event_id"] is None
        ]
        return new, ended

    async def message(self, tenant_id: str, env_id: str) -> dict[str, Any] | None:
        row = await self.pool.fetchrow(
            "SELECT * FROM events.messages WHERE tenant_id = $1 AND env_id = $2",
            tenant_id,
            env_id,
        )
        return dict(row) if row else None

    async def timeline(self, env_id: str) -> list[dict[str, Any]]:
        rows = await self.pool.fetch(
            "SELECT event, time, status, err_code, err_msg, url, attempt "
            "FROM events.event_log WHERE env_id = $1 ORDER BY time, recorded_at",
            env_id,
        )
        return [dict(r) for r in rows]

    async def messages(self, q: MessageQuery) -> list[dict[str, Any]]:
        where = ["tenant_id = $1"]
        args: list[Any] = [q.tenant_id]

        def add(clause: str, value: Any) -> None:
            args.append(value)
            where.append(clause.replace("?", f"${len(args)}"))

        if q.since is not None:
            add("recv_time >= ?", q.since)
        if q.until is not None:
            add("recv_time < ?", q.until)
        if q.status is not None:
            add("status = ?", q.status)
        if q.rcpt is not None:
            # Matched case-insensitively, as users expect (RFC 5321 lets a server treat
            # local parts by case; no mailbox provider does). The stored value keeps its case.
            add("lower(rcpt) = lower(?)", q.rcpt)
        if q.sender is not None:
            add("lower(sender) = lower(?)", q.sender)
        if q.label is not None:
            add("label = ?", q.label)
        if q.method is not None:
            add("method = ?", q.method)
        if q.template_id is not None:
            add("template_id = ?", q.template_id)
        if q.task_id is not None:
            add("task_id = ?", q.task_id)
        if q.subject is not None:
            add("strpos(lower(subject), lower(?)) > 0", q.subject)
        if q.after is not None:
            args.extend(q.after)
            where.append(f"(recv_time, env_id) < (${len(args) - 1}, ${len(args)})")
        args.append(q.limit)
        rows = await self.pool.fetch(
            "SELECT * FROM events.messages WHERE "  # noqa: S608 - clauses are constants
            + " AND ".join(where)
            + f" ORDER BY recv_time DESC, env_id DESC LIMIT ${len(args)}",
            *args,
        )
        return [dict(r) for r in rows]
