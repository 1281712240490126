"""The SQL of batch sending tasks (table ``ingest.tasks``), and nowhere else.

Every state change is one conditional UPDATE (see the migration ``0011_tasks``): a start
and a cancel racing each other, or two processes starting the same task, leave exactly
one winner.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import IO, Any

import asyncpg

from postwire_common.errors import NotAvailable, NotFound

ACTIVE = ("scheduled", "preparing", "sending")


SHOWN_INVALID_ROWS = 100  # a task shows its first invalid rows; the listing has all
CHUNK_BYTES = 1024 * 1024  # an uploaded file is kept in parts of this size


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


@dataclass(frozen=True, slots=True)
class Upload:
    name: str
    format: str  # task_files.FileFormat
    file: IO[bytes]  # read in CHUNK_BYTES parts, from where it is
    size: int


_SHOWN = (
    "id, name, template_id, template_version, subject, sender, label, send_at, state, total, "
    "invalid, queued, suppressed, delivered, failed, file_name, file_format, file_size, "
    "error, created_at, started_at, finished_at"
)
_INSERT = (
    "INSERT INTO ingest.tasks (id, account_id, api_user, user_type, name, template_id, "
    "template_version, subject, sender, label, send_at, state, file_name, file_format, "
    "file_size) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15)"
)


class TaskStore:
    def __init__(self, pool: asyncpg.Pool) -> None:
        self.pool = pool

    @staticmethod
    def _values(task: NewTask) -> tuple[Any, ...]:
        return (
            task.id, task.account_id, task.api_user, task.user_type, task.name,
            task.template_id, task.template_version, task.subject, task.sender, task.label,
            task.send_at,
        )  # fmt: skip

    async def create(
        self,
        task: NewTask,
        recipients: Sequence[Mapping[str, Any]],
        invalid_rows: Sequence[Mapping[str, Any]],
    ) -> dict[str, Any]:
        """A task with typed-in recipients: scheduled at once."""
        async with self.pool.acquire() as conn, conn.transaction():
            await conn.execute(_INSERT, *self._values(task), "scheduled", None, None, None)
            await _insert_rows(conn, task.id, recipients, invalid_rows)
            await conn.execute(
                "UPDATE ingest.tasks SET total = $2, invalid = $3 WHERE id = $1",
                task.id,
                len(recipients) + len(invalid_rows),
                len(invalid_rows),
            )
            return await self._shown(conn, task.account_id, task.id)

    async def create_upload(self, task: NewTask, upload: Upload) -> dict[str, Any]:
        """A task with a recipients file: kept in parts, ``preparing`` until a runner
        has expanded it into rows. The task and its whole file commit together."""
        async with self.pool.acquire() as conn, conn.transaction():
            await conn.execute(
                _INSERT, *self._values(task), "preparing", upload.name, upload.format,
                upload.size,
            )  # fmt: skip
            seq = 0
            while chunk := upload.file.read(CHUNK_BYTES):
                await conn.execute(
                    "INSERT INTO ingest.task_files (task_id, seq, data) VALUES ($1, $2, $3)",
                    task.id,
                    seq,
                    chunk,
                )
                seq += 1
            return await self._shown(conn, task.account_id, task.id)

    async def get(self, account_id: str, task_id: str) -> dict[str, Any]:
        async with self.pool.acquire() as conn:
            return await self._shown(conn, account_id, task_id)

    @staticmethod
    async def _shown(conn: asyncpg.Connection, account_id: str, task_id: str) -> dict[str, Any]:
        row = await conn.fetchrow(
            f"SELECT {_SHOWN} FROM ingest.tasks WHERE account_id = $1 AND id = $2",  # noqa: S608
            account_id,
            task_id,
        )
        if row is None:
            raise NotFound(f"no task {task_id}")
        task = dict(row)
        task["invalid_rows"] = await _invalid_rows(conn, task_id, 0, SHOWN_INVALID_ROWS)
        return task

    async def invalid_rows(
        self, account_id: str, task_id: str, *, after: int, limit: int
    ) -> list[dict[str, Any]]:
        async with self.pool.acquire() as conn:
            owned = await conn.fetchval(
                "SELECT 1 FROM ingest.tasks WHERE account_id = $1 AND id = $2",
                account_id,
                task_id,
            )
            if owned is None:
                raise NotFound(f"no task {task_id}")
            return await _invalid_rows(conn, task_id, after, limit)

    async def listing(
        self, account_id: str, *, after: tuple[datetime, str] | None, limit: int
    ) -> list[dict[str, Any]]:
        """Newest first; ``after`` is the (created_at, id) of the previous page's last.
        Without invalid rows (``GET /v1/tasks/{id}`` has them)."""
        rows = await self.pool.fetch(
            f"SELECT {_SHOWN} FROM ingest.tasks WHERE account_id = $1 "  # noqa: S608
            "AND ($2::timestamptz IS NULL OR (created_at, id) < ($2, $3)) "
            "ORDER BY created_at DESC, id DESC LIMIT $4",
            account_id,
            after[0] if after else None,
            after[1] if after else None,
            limit,
        )
        return [dict(r) for r in rows]

    async def cancel(self, account_id: str, task_id: str) -> dict[str, Any]:
        """Cancel a task that has not started sending; ``not_available`` once it has."""
        async with self.pool.acquire() as conn:
            done = await conn.fetchval(
                "UPDATE ingest.tasks SET state = 'cancelled', finished_at = now(), "
                "lease_owner = NULL, lease_until = NULL WHERE account_id = $1 AND id = $2 "
                "AND state IN ('scheduled', 'preparing') RETURNING 1",
                account_id,
                task_id,
            )
            current = await self._shown(conn, account_id, task_id)  # not_found: not ours
        if done is None:
            raise NotAvailable(
                f"task {task_id} is {current['state']}: only a task that has not started "
                "sending can be cancelled"
            )
        await self.pool.execute("DELETE FROM ingest.task_files WHERE task_id = $1", task_id)
        return current

    # --- preparing: a runner expands an uploaded file into rows -----------------------

    async def claim_preparing(self, owner: str, lease: float) -> asyncpg.Record | None:
        """Take one uploaded task to expand (or one whose expander's lease ran out: its
        rows so far are removed, and it starts over)."""
        async with self.pool.acquire() as conn, conn.transaction():
            task = await conn.fetchrow(
                "UPDATE ingest.tasks t SET lease_owner = $1, "
                "lease_until = now() + make_interval(secs => $2), total = 0, invalid = 0 "
                "FROM (SELECT id FROM ingest.tasks WHERE state = 'preparing' AND "
                "(lease_until IS NULL OR lease_until < now()) ORDER BY created_at LIMIT 1 "
                "FOR UPDATE SKIP LOCKED) due WHERE t.id = due.id RETURNING t.*",
                owner,
                lease,
            )
            if task is not None:
                await conn.execute("DELETE FROM ingest.task_rows WHERE task_id = $1", task["id"])
                await conn.execute(
                    "DELETE FROM ingest.task_invalid_rows WHERE task_id = $1", task["id"]
                )
            return task

    async def copy_file(self, task_id: str, into: IO[bytes]) -> None:
        """Write an uploaded file into ``into``, one part in memory at a time."""
        seq = 0
        while True:
            chunk = await self.pool.fetchval(
                "SELECT data FROM ingest.task_files WHERE task_id = $1 AND seq = $2",
                task_id,
                seq,
            )
            if chunk is None:
                return
            into.write(chunk)
            seq += 1

    async def add_rows(
        self,
        task_id: str,
        owner: str,
        recipients: Sequence[Mapping[str, Any]],
        invalid_rows: Sequence[Mapping[str, Any]],
        lease: float,
    ) -> bool:
        """Store a batch of the file's rows and extend the lease; False when the task is
        no longer this runner's to expand (cancelled, or its lease was taken)."""
        async with self.pool.acquire() as conn, conn.transaction():
            held = await conn.fetchval(
                "SELECT 1 FROM ingest.tasks WHERE id = $1 AND lease_owner = $2 "
                "AND state = 'preparing' FOR UPDATE",
                task_id,
                owner,
            )
            if held is None:
                return False
            invalid = await _insert_rows(conn, task_id, recipients, invalid_rows)
            await conn.execute(
                "UPDATE ingest.tasks SET total = total + $2, invalid = invalid + $3, "
                "lease_until = now() + make_interval(secs => $4) WHERE id = $1",
                task_id,
                len(recipients) + len(invalid_rows),
                invalid,
                lease,
            )
            return True

    async def prepared(self, task_id: str, owner: str, *, error: str | None) -> None:
        """Expanded: scheduled (or failed, saying why); the file is no longer needed."""
        async with self.pool.acquire() as conn, conn.transaction():
            await conn.execute(
                "UPDATE ingest.tasks SET state = CASE WHEN $3::text IS NULL THEN 'scheduled' "
                "ELSE 'failed' END, error = $3, lease_owner = NULL, lease_until = NULL, "
                "finished_at = CASE WHEN $3::text IS NULL THEN NULL ELSE now() END "
                "WHERE id = $1 AND lease_owner = $2 AND state = 'preparing'",
                task_id,
                owner,
                error,
            )
            await conn.execute("DELETE FROM ingest.task_files WHERE task_id = $1", task_id)

    # --- sending ---------------------------------------------------------------------

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

    async def next_rows(self, task_id: str, after: int, limit: int) -> list[dict[str, Any]]:
        """The recipients after row ``after``, in row order."""
        rows = await self.pool.fetch(
            "SELECT row_no, address, variables FROM ingest.task_rows "
            "WHERE task_id = $1 AND row_no > $2 ORDER BY row_no LIMIT $3",
            task_id,
            after,
            limit,
        )
        return [
            {"row": r["row_no"], "address": r["address"], "variables": r["variables"]} for r in rows
        ]

    async def sent(
        self, task_id: str, owner: str, *, through: int, queued: int, suppressed: int, lease: float
    ) -> bool:
        """A batch is accepted: record it and extend the lease; False when the lease was
        lost (another runner took the task over and resends from its own record)."""
        done = await self.pool.fetchval(
            "UPDATE ingest.tasks SET sent_through = $3, queued = queued + $4, "
            "suppressed = suppressed + $5, lease_until = now() + make_interval(secs => $6) "
            "WHERE id = $1 AND lease_owner = $2 AND state = 'sending' AND sent_through < $3 "
            "RETURNING 1",
            task_id,
            owner,
            through,
            queued,
            suppressed,
            lease,
        )
        return done is not None

    async def finish(self, task_id: str, owner: str, *, error: str | None) -> None:
        await self.pool.execute(
            "UPDATE ingest.tasks SET state = CASE WHEN $3::text IS NULL THEN 'completed' "
            "ELSE 'failed' END, error = $3, finished_at = now(), "
            "lease_owner = NULL, lease_until = NULL "
            "WHERE id = $1 AND lease_owner = $2 AND state = 'sending'",
            task_id,
            owner,
            error,
        )

    async def release(self, task_id: str, owner: str) -> None:
        """A runner shutting down hands its task over at once instead of letting its
        lease run out: the next runner resumes from what was recorded."""
        await self.pool.execute(
            "UPDATE ingest.tasks SET lease_until = now() WHERE id = $1 AND lease_owner = $2",
            task_id,
            owner,
        )

    async def record_counts(
        self, account_id: str, task_id: str, *, delivered: int, failed: int, time: datetime
    ) -> None:
        """What the events service counted at ``time`` (``TaskCounts``): absolute figures,
        applied only when newer than those recorded, so a late or repeated report changes
        nothing (and a bounce after delivery can lower ``delivered``)."""
        await self.pool.execute(
            "UPDATE ingest.tasks SET delivered = $3, failed = $4, counts_at = $5 "
            "WHERE account_id = $1 AND id = $2 AND (counts_at IS NULL OR counts_at < $5)",
            account_id,
            task_id,
            delivered,
            failed,
            time,
        )

    @staticmethod
    async def uses_template(conn: asyncpg.Connection, template_id: str) -> bool:
        found = await conn.fetchval(
            "SELECT 1 FROM ingest.tasks WHERE template_id = $1 AND state = ANY($2::text[]) LIMIT 1",
            template_id,
            list(ACTIVE),
        )
        return found is not None


async def _invalid_rows(
    conn: asyncpg.Connection, task_id: str, after: int, limit: int
) -> list[dict[str, Any]]:
    rows = await conn.fetch(
        "SELECT row_no, address, reason FROM ingest.task_invalid_rows "
        "WHERE task_id = $1 AND row_no > $2 ORDER BY row_no LIMIT $3",
        task_id,
        after,
        limit,
    )
    return [{"row": r["row_no"], "address": r["address"], "reason": r["reason"]} for r in rows]


async def _insert_rows(
    conn: asyncpg.Connection,
    task_id: str,
    recipients: Sequence[Mapping[str, Any]],
    invalid_rows: Sequence[Mapping[str, Any]],
) -> int:
    """Insert valid and invalid rows; an address already in the task (in any case) makes
    its row invalid, naming the first. Answers how many rows are invalid in all."""
    invalid = list(invalid_rows)
    if recipients:
        inserted = await conn.fetch(
            "INSERT INTO ingest.task_rows (task_id, row_no, address, variables) "
            "SELECT $1, r, a, v::jsonb "
            "FROM unnest($2::int[], $3::text[], $4::text[]) AS x(r, a, v) "
            "ON CONFLICT DO NOTHING RETURNING row_no",
            task_id,
            [r["row"] for r in recipients],
            [r["address"] for r in recipients],
            [json.dumps(r["variables"]) for r in recipients],
        )
        if len(inserted) < len(recipients):
            kept = {r["row_no"] for r in inserted}
            repeated = [r for r in recipients if r["row"] not in kept]
            first = dict(
                await conn.fetch(
                    "SELECT lower(address), row_no FROM ingest.task_rows "
                    "WHERE task_id = $1 AND lower(address) = ANY($2::text[])",
                    task_id,
                    [r["address"].lower() for r in repeated],
                )
            )
            invalid += [
                {
                    "row": r["row"],
                    "address": r["address"],
                    "reason": f"duplicate of row {first.get(r['address'].lower(), '?')}",
                }
                for r in repeated
            ]
    if invalid:
        await conn.execute(
            "INSERT INTO ingest.task_invalid_rows (task_id, row_no, address, reason) "
            "SELECT $1, r, a, w FROM unnest($2::int[], $3::text[], $4::text[]) AS x(r, a, w) "
            "ON CONFLICT DO NOTHING",
            task_id,
            [r["row"] for r in invalid],
            [r["address"] for r in invalid],
            [r["reason"] for r in invalid],
        )
    return len(invalid)
