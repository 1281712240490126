"""events' SQL, and nowhere else. Tables live in the ``events`` schema."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import asyncpg

from postwire_common.schemas import MailEvent
from postwire_events.status import STATUS_OF, TERMINAL_RANK

_UPSERT_STATUS = """
INSERT INTO events.messages AS m (env_id, tenant_id, msg_id, sender, rcpt, subject, label,
    status, status_rank, status_time, status_code, err_code, err_msg, recv_time)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)
ON CONFLICT (env_id) DO UPDATE SET
    subject = COALESCE(m.subject, EXCLUDED.subject),
    label = COALESCE(m.label, EXCLUDED.label),
    status = CASE WHEN adv THEN EXCLUDED.status ELSE m.status END,
    status_rank = CASE WHEN adv THEN EXCLUDED.status_rank ELSE m.status_rank END,
    status_time = CASE WHEN adv THEN EXCLUDED.status_time ELSE m.status_time END,
    status_code = CASE WHEN adv THEN EXCLUDED.status_code ELSE m.status_code END,
    err_code = CASE WHEN adv THEN EXCLUDED.err_code ELSE m.err_code END,
    err_msg = CASE WHEN adv THEN EXCLUDED.err_msg ELSE m.err_msg END,
    updated_at = now()
""".replace(
    "adv",
    "(EXCLUDED.status_rank > m.status_rank OR (EXCLUDED.status_rank = m.status_rank "
    f"AND m.status_rank < {TERMINAL_RANK} AND EXCLUDED.status_time >= m.status_time))",
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
    limit: int = 50
    after: tuple[datetime, str] | None = None  # cursor: (recv_time, env_id) of the last row


class EventsStore:
    def __init__(self, pool: asyncpg.Pool) -> None:
        self.pool = pool

    async def record(self, event: MailEvent) -> bool:
        """Log ``event`` and apply it to its message's status; False if already logged."""
        async with self.pool.acquire() as conn, conn.transaction():
            inserted = await conn.fetchval(
                "INSERT INTO events.event_log (event_id, env_id, tenant_id, event, time, "
                "status, err_code, err_msg, url, attempt) "
                "VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) "
                "ON CONFLICT (event_id) DO NOTHING RETURNING true",
                event.event_id,
                event.env_id,
                event.tenant_id,
                event.event.value,
                event.time,
                event.status,
                event.err_code,
                event.err_msg,
                event.url,
                event.attempt,
            )
            if not inserted:
                return False
            status = STATUS_OF.get(event.event)
            if status is not None:
                await conn.execute(
                    _UPSERT_STATUS,
                    event.env_id,
                    event.tenant_id,
                    event.msg_id,
                    event.sender,
                    event.rcpt,
                    event.subject,
                    event.label,
                    status[0],
                    status[1],
                    event.time,
                    event.status,
                    event.err_code,
                    event.err_msg,
                    event.recv_time,
                )
        return True

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
            add("rcpt = ?", q.rcpt)
        if q.sender is not None:
            add("sender = ?", q.sender)
        if q.label is not None:
            add("label = ?", q.label)
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
