"""Daily partitions for history tables, and retention by dropping them.

A history table (the event log, delivery's attempt history) is ``PARTITION BY RANGE`` on
a timestamp. :func:`ensure` creates one partition per UTC day, from yesterday to a few
days ahead; :func:`purge` drops whole partitions older than the retention period. So
purging is a catalogue change, never a ``DELETE`` that leaves dead rows and vacuum work
behind; only the rare rows that landed in the default partition are deleted. A history
may name its live rows (pushes still pending): a partition holding any is kept.
:class:`Retention` runs both at start and then hourly (a task the service spawns),
for the tables a service owns, with periods from its settings.
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

import asyncpg

log = logging.getLogger("postwire.retention")

AHEAD_DAYS = 3
_NAME = re.compile(r"_p(\d{8})$")


@dataclass(frozen=True)
class History:
    table: str  # schema.table, partitioned by range on a timestamptz column
    keep: float  # seconds
    # A condition on rows still in use (e.g. pushes still pending): a partition holding
    # any is kept, and a warning says so, instead of dropping work that is not finished.
    live: str | None = None


def _partition(table: str, day: date) -> str:
    return f"{table}_p{day:%Y%m%d}"


async def ensure(conn: asyncpg.Connection, table: str, today: date | None = None) -> None:
    """Partitions for yesterday through ``AHEAD_DAYS`` days ahead (UTC days)."""
    today = today or datetime.now(UTC).date()
    for offset in range(-1, AHEAD_DAYS + 1):
        day = today + timedelta(days=offset)
        start = datetime(day.year, day.month, day.day, tzinfo=UTC)
        try:
            await conn.execute(
                f"CREATE TABLE IF NOT EXISTS {_partition(table, day)} PARTITION OF {table} "
                f"FOR VALUES FROM ('{start.isoformat()}') TO "
                f"('{(start + timedelta(days=1)).isoformat()}')"
            )
        except asyncpg.CheckViolationError:
            # The default partition already holds rows of that day (a clock far ahead):
            # they stay there; the day's rows keep going there too.
            log.warning("a day's partition cannot be made", extra={"table": table, "day": str(day)})


async def partitions(conn: asyncpg.Connection, table: str) -> list[tuple[str, date]]:
    schema, _, name = table.partition(".")
    rows = await conn.fetch(
        "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
        "JOIN pg_class p ON p.oid = i.inhparent JOIN pg_namespace n ON n.oid = p.relnamespace "
        "WHERE n.nspname = $1 AND p.relname = $2",
        schema,
        name,
    )
    found = []
    for row in rows:
        match = _NAME.search(row["relname"])
        if match:
            found.append(
                (f"{schema}.{row['relname']}", datetime.strptime(match.group(1), "%Y%m%d").date())
            )
    return sorted(found, key=lambda p: p[1])


async def purge(
    conn: asyncpg.Connection,
    table: str,
    keep: float,
    now: datetime | None = None,
    live: str | None = None,
) -> list[str]:
    """Drop the partitions whose whole day ended more than ``keep`` seconds ago, except
    those holding a row that matches ``live``."""
    now = now or datetime.now(UTC)
    cutoff = now - timedelta(seconds=keep)
    dropped = []
    for name, day in await partitions(conn, table):
        end = datetime(day.year, day.month, day.day, tzinfo=UTC) + timedelta(days=1)
        if end > cutoff:
            continue
        # Names and conditions are the services' own constants, never input.
        query = f"SELECT EXISTS (SELECT 1 FROM {name} WHERE {live})"  # noqa: S608
        if live and await conn.fetchval(query):
            log.warning("an expired partition holds live rows; kept", extra={"partition": name})
            continue
        await conn.execute(f"DROP TABLE IF EXISTS {name}")
        dropped.append(name)
    await _purge_default(conn, table, cutoff, live)
    return dropped


async def _purge_default(
    conn: asyncpg.Connection, table: str, cutoff: datetime, live: str | None
) -> None:
    """Rows of days that had no partition of their own (late stragglers, a clock far off)
    wait in the default partition; the few older than the cutoff are deleted there."""
    row = await conn.fetchrow(
        "SELECT d.oid::regclass::text AS name, pg_get_partkeydef(p.partrelid) AS key "
        "FROM pg_partitioned_table p JOIN pg_class d ON d.oid = p.partdefid "
        "WHERE p.partrelid = $1::regclass",
        table,
    )
    match = re.fullmatch(r"RANGE \((\w+)\)", row["key"]) if row else None
    if row is None or match is None:
        return
    condition = f"{match.group(1)} < $1" + (f" AND NOT ({live})" if live else "")
    status = await conn.execute(f"DELETE FROM {row['name']} WHERE {condition}", cutoff)  # noqa: S608
    if status != "DELETE 0":
        log.info("stragglers purged", extra={"partition": row["name"], "status": status})


class Retention:
    """Keeps a service's history tables partitioned ahead and purged behind."""

    def __init__(
        self, pool: asyncpg.Pool, histories: Sequence[History], every: float = 3600.0
    ) -> None:
        self._pool = pool
        self._histories = list(histories)
        self._every = every

    async def run_once(self) -> None:
        async with self._pool.acquire() as conn:
            for history in self._histories:
                await ensure(conn, history.table)
                dropped = await purge(conn, history.table, history.keep, live=history.live)
                if dropped:
                    log.info("history purged", extra={"table": history.table, "dropped": dropped})

    async def run(self) -> None:
        """Every ``every`` seconds, until cancelled."""
        while True:
            await asyncio.sleep(self._every)
            try:
                await self.run_once()
            except Exception as exc:  # the next hour tries again; partitions exist ahead
                log.warning("retention round failed", extra={"error": repr(exc)})
