"""The SQL of batch sending tasks (table ``ingest.tasks``), and nowhere else.

Every state change is one conditional UPDATE (see the migration ``0011_tasks``): a start
and a cancel racing each other, or two processes starting the same task, leave exactly
one winner.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import asyncpg

from postwire_common.errors import NotAvailable, NotFound

ACTIVE = ("scheduled", "preparing", "sending")


@dataclass(frozen=True, slots=True)
class NewTask:
    id: str
    account_id: str
    api_user: str
    user_type: str
    name: str
    template_id: str
    template_version: int
    subject: str | None
    sender: str
    label: str | None
    send_at: datetime
    recipients: list[dict[str, Any]]  # [{row, address, variables}]
    invalid_rows: list[dict[str, Any]]  # [{row, address, reason}]


_SHOWN = (
    "id, name, template_id, template_version, subject, sender, label, send_at, state, total, "
    "invalid, queued, suppressed, invalid_rows, error, created_at, started_at, finished_at"
)


class TaskStore:
    def __init__(self, pool: asyncpg.Pool) -> None:
        self.pool = pool

    async def create(self, task: NewTask) -> dict[str, Any]:
        row = await self.pool.fetchrow(
            "INSERT INTO ingest.tasks (id, account_id, api_user, user_type, name, template_id, "  # noqa: S608 - _SHOWN is a constant column list
            "template_version, subject, sender, label, send_at, state, recipients, total, "
            "invalid, invalid_rows) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, "
            f"'scheduled', $12::jsonb, $13, $14, $15::jsonb) RETURNING {_SHOWN}",
            task.id, task.account_id, task.api_user, task.user_type, task.name,
            task.template_id, task.template_version, task.subject, task.sender, task.label,
            task.send_at, json.dumps(task.recipients),
            len(task.recipients) + len(task.invalid_rows), len(task.invalid_rows),
            json.dumps(task.invalid_rows),
        )  # fmt: skip
        assert row is not None
        return shown(row)

    async def get(self, account_id: str, task_id: str) -> dict[str, Any]:
        row = await self.pool.fetchrow(
            f"SELECT {_SHOWN} FROM ingest.tasks WHERE account_id = $1 AND id = $2",  # noqa: S608
            account_id,
            task_id,
        )
        if row is None:
            raise NotFound(f"no task {task_id}")
        return shown(row)

    async def list(
        self, account_id: str, *, after: tuple[datetime, str] | None, limit: int
    ) -> list[dict[str, Any]]:
        """Newest first; ``after`` is the (created_at, id) of the previous page's last."""
        rows = await self.pool.fetch(
            f"SELECT {_SHOWN} FROM ingest.tasks WHERE account_id = $1 "  # noqa: S608
            "AND ($2::timestamptz IS NULL OR (created_at, id) < ($2, $3)) "
            "ORDER BY created_at DESC, id DESC LIMIT $4",
            account_id,
            after[0] if after else None,
            after[1] if after else None,
            limit,
        )
        return [shown(r) for r in rows]

    async def cancel(self, account_id: str, task_id: str) -> dict[str, Any]:
        """Cancel a task that has not started; ``not_available`` once it has."""
        row = await self.pool.fetchrow(
            "UPDATE ingest.tasks SET state = 'cancelled', finished_at = now() "  # noqa: S608 - _SHOWN is a constant
            "WHERE account_id = $1 AND id = $2 AND state = 'scheduled' "
            f"RETURNING {_SHOWN}",
            account_id,
            task_id,
        )
        if row is not None:
            return shown(row)
        current = await self.get(account_id, task_id)  # not_found when it is not ours
        raise NotAvailable(
            f"task {task_id} is {current['state']}: only a scheduled task can be cancelled"
        )

    async def claim(self, owner: str, lease: float) -> asyncpg.Record | None:
        """Take one task that is due (or whose sender's lease ran out) to send it."""
        return await self.pool.fetchrow(
            "UPDATE ingest.tasks t SET state = 'sending', lease_owner = $1, "
            "lease_until = now() + make_interval(secs => $2), "
            "started_at = COALESCE(t.started_at, now()) "
            "FROM (SELECT id FROM ingest.tasks WHERE send_at <= now() AND ("
            "state = 'scheduled' OR (state = 'sending' AND lease_until < now())) "
            "ORDER BY send_at LIMIT 1 FOR UPDATE SKIP LOCKED) due "
            "WHERE t.id = due.id RETURNING t.*",
            owner,
            lease,
        )

    async def finish(
        self, task_id: str, owner: str, *, queued: int, suppressed: int, error: str | None
    ) -> None:
        await self.pool.execute(
            "UPDATE ingest.tasks SET state = CASE WHEN $5::text IS NULL THEN 'completed' "
            "ELSE 'failed' END, queued = $3, suppressed = $4, error = $5, finished_at = now(), "
            "lease_owner = NULL, lease_until = NULL WHERE id = $1 AND lease_owner = $2",
            task_id,
            owner,
            queued,
            suppressed,
            error,
        )

    @staticmethod
    async def uses_template(conn: asyncpg.Connection, template_id: str) -> bool:
        found = await conn.fetchval(
            "SELECT 1 FROM ingest.tasks WHERE template_id = $1 AND state = ANY($2::text[]) LIMIT 1",
            template_id,
            list(ACTIVE),
        )
        return found is not None


def shown(row: asyncpg.Record) -> dict[str, Any]:
    task = dict(row)
    task["invalid_rows"] = json.loads(task["invalid_rows"])
    return task
