"""The SQL of a task's attachments (table ``ingest.task_attachments``), and nowhere else.

Every message of a task carries its attachments; they may change only before the task
starts sending (``scheduled`` or ``preparing``). A change locks the task's row first
(``SELECT … FOR UPDATE``), so it is serialised with the runner's claim (an UPDATE of
that row) and with other changes to the same task: the state it checked is the state
it commits under, and two uploads at once cannot both fit into the last free bytes of
the 4 MB. Another account's task answers as a missing one does.
"""

from __future__ import annotations

from typing import Any

import asyncpg

from postwire_common.errors import InvalidValue, NotAvailable, NotFound, SizeExceeded
from postwire_common.ids import new_id
from postwire_ingest.compose import Attachment
from postwire_ingest.limits import MAX_TASK_ATTACHMENT_BYTES, MAX_TASK_ATTACHMENTS

EDITABLE = ("scheduled", "preparing")  # before the runner starts sending
_SHOWN = "id, filename, content_type, size, created_at"


class TaskAttachmentStore:
    def __init__(self, pool: asyncpg.Pool) -> None:
        self.pool = pool

    async def list(self, account_id: str, task_id: str) -> list[dict[str, Any]]:
        """The task's attachments, oldest first, without their data."""
        rows = await self.pool.fetch(
            "SELECT a.id, a.filename, a.content_type, a.size, a.created_at "
            "FROM ingest.tasks t LEFT JOIN ingest.task_attachments a ON a.task_id = t.id "
            "WHERE t.account_id = $1 AND t.id = $2 ORDER BY a.created_at, a.id",
            account_id,
            task_id,
        )
        if not rows:
            raise NotFound(f"no task {task_id}")
        return [dict(r) for r in rows if r["id"] is not None]

    async def add(
        self, account_id: str, task_id: str, filename: str, content_type: str, data: bytes
    ) -> dict[str, Any]:
        """Attach a file (name and type already checked) while the task has not started,
        has fewer than ``MAX_TASK_ATTACHMENTS``, none of that name, and room for it."""
        async with self.pool.acquire() as conn, conn.transaction():
            await _editable(conn, account_id, task_id, "attachments can be added")
            held = await conn.fetchrow(
                "SELECT count(*) AS files, COALESCE(sum(size), 0) AS bytes, "
                "COALESCE(bool_or(lower(filename) = lower($2)), false) AS taken "
                "FROM ingest.task_attachments WHERE task_id = $1",
                task_id,
                filename,
            )
            assert held is not None
            if held["taken"]:
                raise InvalidValue(f"task {task_id} has an attachment named {filename!r}")
            if held["files"] >= MAX_TASK_ATTACHMENTS:
                raise SizeExceeded(f"a task has at most {MAX_TASK_ATTACHMENTS} attachments")
            if held["bytes"] + len(data) > MAX_TASK_ATTACHMENT_BYTES:
                raise SizeExceeded(
                    f"a task's attachments are at most {_mb(MAX_TASK_ATTACHMENT_BYTES)} in all: "
                    f"it holds {held['bytes']} bytes, this file is {len(data)}"
                )
            row = await conn.fetchrow(
                "INSERT INTO ingest.task_attachments (task_id, id, filename, content_type, "  # noqa: S608 - _SHOWN is a constant column list
                f"size, data) VALUES ($1, $2, $3, $4, $5, $6) RETURNING {_SHOWN}",
                task_id,
                new_id(),
                filename,
                content_type,
                len(data),
                data,
            )
        assert row is not None
        return dict(row)

    async def delete(self, account_id: str, task_id: str, attachment_id: str) -> None:
        async with self.pool.acquire() as conn, conn.transaction():
            await _editable(conn, account_id, task_id, "attachments can be removed")
            deleted = await conn.fetchval(
                "DELETE FROM ingest.task_attachments WHERE task_id = $1 AND id = $2 RETURNING id",
                task_id,
                attachment_id,
            )
        if deleted is None:
            raise NotFound(f"no attachment {attachment_id} in task {task_id}")

    async def clear(self, account_id: str, task_id: str) -> int:
        """Remove every attachment of the task; how many there were."""
        async with self.pool.acquire() as conn, conn.transaction():
            await _editable(conn, account_id, task_id, "attachments can be removed")
            status = await conn.execute(
                "DELETE FROM ingest.task_attachments WHERE task_id = $1", task_id
            )
        return int(status.rsplit(" ", 1)[-1])  # "DELETE <n>"

    async def for_task(self, task_id: str) -> tuple[Attachment, ...]:
        """What the runner attaches to every message of the task, in the order added."""
        rows = await self.pool.fetch(
            "SELECT filename, content_type, data FROM ingest.task_attachments "
            "WHERE task_id = $1 ORDER BY created_at, id",
            task_id,
        )
        return tuple(Attachment(r["filename"], bytes(r["data"]), r["content_type"]) for r in rows)


async def _editable(conn: asyncpg.Connection, account_id: str, task_id: str, what: str) -> None:
    """Lock the account's task for this transaction; refuse once it has started."""
    state = await conn.fetchval(
        "SELECT state FROM ingest.tasks WHERE account_id = $1 AND id = $2 FOR UPDATE",
        account_id,
        task_id,
    )
    if state is None:
        raise NotFound(f"no task {task_id}")
    if state not in EDITABLE:
        raise NotAvailable(
            f"task {task_id} is {state}: {what} only before it starts sending "
            "(scheduled or preparing)"
        )


def _mb(size: int) -> str:
    return f"{size / (1024 * 1024):g} MB"
