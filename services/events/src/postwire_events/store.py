"""events' SQL, and nowhere else. Tables live in the ``events`` schema."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import asyncpg

from postwire_common.schemas import EventType, MailEvent
from postwire_events import stats_store, suppression_store, task_count_store
from postwire_events.status import TERMINAL_RANK, status_of
from postwire_events.suppressions import from_events
from postwire_events.task_counts import COUNTED_AS, Ended

# One statement for a whole batch of events: log the new ones, then create or advance
# each message's row with the winning status of the batch (merged in Python first: one
# statement cannot update a row twice). Forward only: a higher rank wins, equal ranks
# below terminal go by time, terminal never changes. Rows are written in key order so
# concurrent batches of several replicas lock in the same order. Messages with only
# tracking events in the batch get a row of rank 0, which never moves a status (it
# creates a row, of rank 0, only for an open that overtook every other event of its
# message): they are locked like the others, so what the statistics read of them is
# their latest version (stats.py). It returns the new events ('e' rows) and every
# message row as it leaves it ('m' rows: dimensions, first open and click, and status
# and ``counted`` for the task counts; see task_counts.py).
_RECORD_MANY = """
WITH logged AS (
    INSERT INTO events.event_log (event_id, env_id, tenant_id, event, time, status,
        err_code, err_msg, url, attempt, ip, user_agent, machine)
    SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::timestamptz[],
        $6::int[], $7::int[], $8::text[], $9::text[], $10::int[], $11::text[], $12::text[],
        $13::text[])
    ON CONFLICT (event_id, time) DO NOTHING
    RETURNING event_id, env_id, event, status, machine
), status AS (
    INSERT INTO events.messages AS m (env_id, tenant_id, msg_id, sender, rcpt, subject,
        label, status, status_rank, status_time, status_code, err_code, err_msg, recv_time,
        method, template_id, task_id, api_user, requested, first_open, first_click)
    SELECT * FROM unnest($14::text[], $15::text[], $16::text[], $17::text[], $18::text[],
        $19::text[], $20::text[], $21::text[], $22::int[], $23::timestamptz[], $24::int[],
        $25::int[], $26::text[], $27::timestamptz[], $28::text[], $29::text[], $30::text[],
        $31::text[], $32::smallint[], $33::text[], $34::text[])
    ON CONFLICT (env_id) DO UPDATE SET
        subject = COALESCE(m.subject, EXCLUDED.subject),
        label = COALESCE(m.label, EXCLUDED.label),
        method = COALESCE(m.method, EXCLUDED.method),
        template_id = COALESCE(m.template_id, EXCLUDED.template_id),
        task_id = COALESCE(m.task_id, EXCLUDED.task_id),
        api_user = COALESCE(m.api_user, EXCLUDED.api_user),
        requested = CASE WHEN m.requested > 0 THEN m.requested
            WHEN EXCLUDED.requested > 0 THEN 2 ELSE 0 END,
        first_open = COALESCE(m.first_open, EXCLUDED.first_open),
        first_click = COALESCE(m.first_click, EXCLUDED.first_click),
        status = CASE WHEN adv THEN EXCLUDED.status ELSE m.status END,
        status_rank = CASE WHEN adv THEN EXCLUDED.status_rank ELSE m.status_rank END,
        status_time = CASE WHEN adv THEN EXCLUDED.status_time ELSE m.status_time END,
        status_code = CASE WHEN adv THEN EXCLUDED.status_code ELSE m.status_code END,
        err_code = CASE WHEN adv THEN EXCLUDED.err_code ELSE m.err_code END,
        err_msg = CASE WHEN adv THEN EXCLUDED.err_msg ELSE m.err_msg END,
        updated_at = CASE WHEN EXCLUDED.status_rank > 0 THEN now() ELSE m.updated_at END
    RETURNING env_id, tenant_id, recv_time, lower(split_part(sender, '@', -1)) AS domain,
        label, api_user, template_id, task_id, requested, first_open, first_click, status,
        counted
)
SELECT 'e' AS kind, event_id, env_id, event, status AS code, machine,
    NULL::text AS tenant_id, NULL::timestamptz AS recv_time, NULL::text AS domain,
    NULL::text AS label, NULL::text AS api_user, NULL::text AS template_id,
    NULL::text AS task_id, NULL::smallint AS requested, NULL::text AS first_open,
    NULL::text AS first_click, NULL::text AS status, NULL::text AS counted
FROM logged
UNION ALL
SELECT 'm', NULL, env_id, NULL, NULL, NULL, tenant_id, recv_time, domain, label, api_user,
    template_id, task_id, requested, first_open, first_click, status, counted
FROM status
""".replace(
    "adv",
    "(EXCLUDED.status_rank > m.status_rank OR (EXCLUDED.status_rank = m.status_rank "
    f"AND m.status_rank < {TERMINAL_RANK} AND EXCLUDED.status_time >= m.status_time))",
)
STATUS_COLUMNS = 21


def merge_status(events: Sequence[MailEvent]) -> list[tuple[Any, ...]]:
    """One status row per message: the batch's winning event (by rank, then time), with
    subject, label, method, template, task and API user from whichever event carries them
    (the request event), whether the request is among them, and the first human open and
    click of the batch. Applying a duplicate again is harmless: the forward-only rule
    leaves the row as it is. Messages with only tracking events get no row here (see
    :func:`merge_tracking`)."""
    rows: dict[str, tuple[Any, ...]] = {}
    extras: dict[str, tuple[Any, ...]] = {}
    for e in events:
        known = extras.get(e.env_id, (None,) * 6)
        given = (e.subject, e.label, e.method, e.template_id, e.task_id, e.api_user)
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
    requested = {e.env_id for e in events if e.event is EventType.REQUEST}
    opens, clicks = first_hits(events)
    merged = []
    for env_id in sorted(rows):
        row = list(rows[env_id])
        subject, label, method, template_id, task_id, api_user = extras[env_id]
        row[5], row[6] = subject, label
        row[14], row[15], row[16] = method, template_id, task_id
        row += [api_user, int(env_id in requested), opens.get(env_id), clicks.get(env_id)]
        merged.append(tuple(row))
    return merged


def merge_tracking(events: Sequence[MailEvent], merged: set[str]) -> list[tuple[Any, ...]]:
    """A rank-0 row for each message of the batch not in ``merged`` (only tracking
    events): it moves no status, records the first human open and click, and creates a
    row (unrequested, uncounted) only if none exists."""
    opens, clicks = first_hits(events)
    rows: dict[str, tuple[Any, ...]] = {}
    for e in events:
        if e.env_id in merged or e.env_id in rows:
            continue
        rows[e.env_id] = (
            e.env_id, e.tenant_id, e.msg_id, e.sender, e.rcpt, None, e.label,
            "queued", 0, e.time, None, None, None, e.recv_time, None, None, None,
            None, 0, opens.get(e.env_id), clicks.get(e.env_id),
        )  # fmt: skip
    return [rows[env_id] for env_id in sorted(rows)]


def first_hits(events: Sequence[MailEvent]) -> tuple[dict[str, str], dict[str, str]]:
    """The event id of each message's first human (``machine`` unset) open and click in
    the batch."""
    found: dict[tuple[EventType, str], MailEvent] = {}
    for e in events:
        if e.event not in (EventType.OPEN, EventType.CLICK) or e.machine is not None:
            continue
        known = found.get((e.event, e.env_id))
        if known is None or (e.time, e.event_id) < (known.time, known.event_id):
            found[(e.event, e.env_id)] = e
    opens = {env: e.event_id for (kind, env), e in found.items() if kind is EventType.OPEN}
    clicks = {env: e.event_id for (kind, env), e in found.items() if kind is EventType.CLICK}
    return opens, clicks


_EVENTS = (
    "SELECT l.event_id, l.event, l.env_id, l.time, l.status, l.err_code, l.err_msg, l.url, "
    "l.ip, l.user_agent, l.machine, m.msg_id, m.sender, m.rcpt, m.label, m.api_user "
    "FROM events.event_log l JOIN events.messages m ON m.env_id = l.env_id"
)
_NEWEST = "ORDER BY l.time DESC, l.event_id DESC LIMIT $4"
# The recipient's messages drive, each one's events found by env_id and time only
# (``event_log_env``); OFFSET 0 keeps the planner from flattening the subquery and
# pushing the other conditions into it, where it would rather scan the account's events.
_BY_RCPT = (
    "SELECT l.event_id, l.event, l.env_id, l.time, l.status, l.err_code, l.err_msg, l.url, "
    "l.ip, l.user_agent, l.machine, m.msg_id, m.sender, m.rcpt, m.label, m.api_user "
    "FROM events.messages m CROSS JOIN LATERAL (SELECT * FROM events.event_log l "
    "WHERE l.env_id = m.env_id AND l.time >= $2 AND l.time < $3 OFFSET 0) l WHERE "
)


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
    api_user: str | None = None
    limit: int = 50
    after: tuple[datetime, str] | None = None  # cursor: (recv_time, env_id) of the last row


@dataclass(frozen=True)
class EventQuery:
    tenant_id: str
    since: datetime
    until: datetime
    events: tuple[str, ...]  # one or more EventType values
    rcpt: str | None = None
    label: str | None = None
    api_user: str | None = None
    limit: int = 50
    after: tuple[datetime, str] | None = None  # cursor: (time, event_id) of the last row


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
        """Log ``events``, apply them to their messages' status and count them, in one
        transaction; for each event, whether it was new."""
        logged = sorted({e.event_id: e for e in events}.values(), key=lambda e: e.event_id)
        rows = merge_status(events)
        rows = sorted(rows + merge_tracking(events, {r[0] for r in rows}), key=lambda r: r[0])
        columns: list[list[Any]] = (
            [list(c) for c in zip(*rows, strict=True)]
            if rows
            else [[] for _ in range(STATUS_COLUMNS)]
        )
        async with self.pool.acquire() as conn, conn.transaction():
            new, ended, found = await self._record(conn, logged, columns)
            # New events only: a redelivered bounce must not undo a manual removal.
            added = await suppression_store.add(
                conn, from_events([e for e in logged if e.event_id in new])
            )
            # Last: a big task's and an account's current hour are hot rows, so their
            # locks are held only until the commit.
            counted = await task_count_store.add(conn, ended)
            await stats_store.add(conn, found)
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
    ) -> tuple[set[str], list[Ended], stats_store.Found]:
        """The ids of the new events, the task messages left with a counted status, and
        what the statistics need of both."""
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
            [e.ip for e in logged],
            [e.user_agent for e in logged],
            [e.machine for e in logged],
            *columns,
        )
        found = stats_store.Found(
            [r for r in rows if r["kind"] == "e"], [r for r in rows if r["kind"] == "m"]
        )
        new = {r["event_id"] for r in found.events}
        ended = [
            Ended(r["env_id"], r["tenant_id"], r["task_id"], r["status"], r["counted"])
            for r in found.messages
            if r["task_id"] is not None and r["status"] in COUNTED_AS
        ]
        return new, ended, found

    async def message(self, tenant_id: str, env_id: str) -> dict[str, Any] | None:
        row = await self.pool.fetchrow(
            "SELECT * FROM events.messages WHERE tenant_id = $1 AND env_id = $2",
            tenant_id,
            env_id,
        )
        return dict(row) if row else None

    async def timeline(self, env_id: str) -> list[dict[str, Any]]:
        rows = await self.pool.fetch(
            "SELECT event, time, status, err_code, err_msg, url, attempt, ip, user_agent, "
            "machine FROM events.event_log WHERE env_id = $1 ORDER BY time, recorded_at",
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
        if q.api_user is not None:
            add("api_user = ?", q.api_user)
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

    async def events(self, q: EventQuery) -> list[dict[str, Any]]:
        """An account's events of the given types, newest first, with their messages'
        rcpt, sender, label and API user. Without ``rcpt``: one ordered scan of
        ``event_log_tenant_event`` per type, merged, each stopping after ``limit`` rows.
        With it: the recipient's messages first (``messages_tenant_rcpt_ci``), then their
        events (``event_log_env``); an ordered scan would read every event of the range
        looking for a rare recipient's."""
        args: list[Any] = [q.tenant_id, q.since, q.until, q.limit]
        on_log = ["l.tenant_id = $1", "l.time >= $2", "l.time < $3"]
        on_message = ["m.tenant_id = $1"]

        def add(where: list[str], clause: str, value: Any) -> None:
            args.append(value)
            where.append(clause.replace("?", f"${len(args)}"))

        if q.label is not None:
            add(on_message, "m.label = ?", q.label)
        if q.api_user is not None:
            add(on_message, "m.api_user = ?", q.api_user)
        if q.after is not None:
            args.extend(q.after)
            on_log.append(f"(l.time, l.event_id) < (${len(args) - 1}, ${len(args)})")
        if q.rcpt is not None:
            add(on_message, "lower(m.rcpt) = lower(?)", q.rcpt)
            add(on_log, "l.event = ANY(?::text[])", sorted(set(q.events)))
            sql = f"{_BY_RCPT} {' AND '.join([*on_log, *on_message])} {_NEWEST}"
            return [dict(r) for r in await self.pool.fetch(sql, *args)]
        parts = []
        for event in sorted(set(q.events)):
            args.append(event)
            clauses = " AND ".join([*on_log, *on_message, f"l.event = ${len(args)}"])
            parts.append(f"({_EVENTS} WHERE {clauses} {_NEWEST})")
        rows = await self.pool.fetch(
            "SELECT * FROM ("  # noqa: S608 - constants
            + " UNION ALL ".join(parts)
            + ") e ORDER BY time DESC, event_id DESC LIMIT $4",
            *args,
        )
        return [dict(r) for r in rows]
