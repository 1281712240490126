"""The SQL of tasks' counts (``events.task_counts``, ``events.messages.counted``) and of
their announcements in ``events.outbox`` (see ``task_counts.py``)."""

from __future__ import annotations

from collections.abc import Sequence

import asyncpg

from postwire_common.broker.outbox import outbox_columns
from postwire_common.schemas import TaskCount
from postwire_events.suppression_store import OUTBOX_TABLE
from postwire_events.task_counts import Ended, announce, deltas, moves

# Mark what each message adds now and add the deltas, one statement. The messages' rows
# are locked by the status update of the same transaction; the time of a task's figures
# grows with every change, even when clocks of concurrent transactions do not.
_ADD = """
WITH marked AS (
    UPDATE events.messages m SET counted = c.counted
    FROM unnest($1::text[], $2::text[]) AS c(env_id, counted)
    WHERE m.env_id = c.env_id
)
INSERT INTO events.task_counts AS t (tenant_id, task_id, delivered, failed)
SELECT * FROM unnest($3::text[], $4::text[], $5::int[], $6::int[])
ON CONFLICT (tenant_id, task_id) DO UPDATE SET
    delivered = t.delivered + EXCLUDED.delivered,
    failed = t.failed + EXCLUDED.failed,
    pending = true,
    updated_at = GREATEST(t.updated_at + interval '1 microsecond', clock_timestamp())
"""

# Take the oldest pending tasks (replicas skip each other's) and clear their mark.
_DUE = """
WITH due AS (
    SELECT tenant_id, task_id FROM events.task_counts WHERE pending
    ORDER BY updated_at LIMIT $1 FOR UPDATE SKIP LOCKED
)
UPDATE events.task_counts t SET pending = false FROM due
WHERE t.tenant_id = due.tenant_id AND t.task_id = due.task_id
RETURNING t.tenant_id, t.task_id, t.delivered, t.failed, t.updated_at
"""

_OUTBOX = (
    f"INSERT INTO {OUTBOX_TABLE} (exchange, routing_key, message_id, body) "  # noqa: S608 - a constant
    "SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::bytea[])"
)


async def add(conn: asyncpg.Connection, ended: Sequence[Ended]) -> bool:
    """Count the messages of ``ended`` that count differently now; whether any did.
    Call it in the transaction whose status update returned ``ended``."""
    found = moves(ended)
    if not found:
        return False
    sums = deltas(found)
    await conn.execute(
        _ADD,
        [m.env_id for m in found],
        [m.now for m in found],
        [tenant_id for tenant_id, _ in sums],
        [task_id for _, task_id in sums],
        [delivered for delivered, _ in sums.values()],
        [failed for _, failed in sums.values()],
    )
    return True


class TaskCountStore:
    def __init__(self, pool: asyncpg.Pool) -> None:
        self.pool = pool

    async def flush(self, limit: int) -> int:
        """Write the counts of up to ``limit`` changed tasks to the outbox, in the
        transaction that clears their mark; how many tasks."""
        async with self.pool.acquire() as conn, conn.transaction():
            rows = await conn.fetch(_DUE, limit)
            outgoing = announce(
                [
                    TaskCount(
                        tenant_id=r["tenant_id"],
                        task_id=r["task_id"],
                        delivered=r["delivered"],
                        failed=r["failed"],
                        time=r["updated_at"],
                    )
                    for r in rows
                ]
            )
            if outgoing:
                await conn.execute(_OUTBOX, *outbox_columns(outgoing))
        return len(rows)
