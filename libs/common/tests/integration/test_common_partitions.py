"""Daily partitions on the real PostgreSQL: made ahead, rows land in their day, and
retention drops whole days (no DELETE) while keeping the rest."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, date, datetime, timedelta

import asyncpg
import pytest

from postwire_common.partitions import AHEAD_DAYS, ensure, partitions, purge
from postwire_testkit.infra import temp_database

pytestmark = pytest.mark.integration


@pytest.fixture
async def conn() -> AsyncIterator[asyncpg.Connection]:
    async with temp_database() as url:
        connection = await asyncpg.connect(url)
        await connection.execute(
            "CREATE SCHEMA h; CREATE TABLE h.log (id int, at timestamptz NOT NULL) "
            "PARTITION BY RANGE (at); CREATE TABLE h.log_other PARTITION OF h.log DEFAULT"
        )
        yield connection
        await connection.close()


async def test_days_are_made_ahead_and_old_days_are_dropped_whole(conn: asyncpg.Connection) -> None:
    today = date(2026, 11, 30)
    await ensure(conn, "h.log", today - timedelta(days=40))  # an old stretch of days
    await ensure(conn, "h.log", today)
    await ensure(conn, "h.log", today)  # again: nothing changes
    days = [day for _, day in await partitions(conn, "h.log")]
    assert today + timedelta(days=AHEAD_DAYS) in days
    assert today - timedelta(days=1) in days
    old = datetime(2026, 10, 21, 12, tzinfo=UTC)
    recent = datetime(2026, 11, 30, 8, tzinfo=UTC)
    await conn.executemany(
        "INSERT INTO h.log VALUES ($1, $2)", [(1, old), (2, recent), (3, recent)]
    )
    assert await conn.fetchval("SELECT count(*) FROM h.log_p20261021") == 1

    dropped = await purge(conn, "h.log", keep=30 * 86400, now=datetime(2026, 11, 30, 9, tzinfo=UTC))
    assert "h.log_p20261021" in dropped
    assert all(name < "h.log_p20261031" for name in dropped)
    assert await conn.fetchval("SELECT array_agg(id ORDER BY id) FROM h.log") == [2, 3]
    assert "h.log_p20261130" not in dropped


async def test_a_day_already_in_the_default_partition_does_not_stop_the_others(
    conn: asyncpg.Connection,
) -> None:
    today = date(2026, 11, 30)
    far = datetime(2026, 12, 3, tzinfo=UTC)  # no partition yet: goes to the default one
    await conn.execute("INSERT INTO h.log VALUES (1, $1)", far)
    await ensure(conn, "h.log", today)  # cannot make Dec 3; makes the other days
    days = [day for _, day in await partitions(conn, "h.log")]
    assert date(2026, 12, 2) in days
    assert date(2026, 12, 3) not in days
    assert await conn.fetchval("SELECT count(*) FROM h.log") == 1


async def test_a_day_with_live_rows_is_kept_and_old_stragglers_leave_the_default(
    conn: asyncpg.Connection,
) -> None:
    await conn.execute("ALTER TABLE h.log ADD COLUMN pending boolean NOT NULL DEFAULT false")
    today = date(2026, 11, 30)
    await ensure(conn, "h.log", date(2026, 10, 10))
    old = datetime(2026, 10, 10, 12, tzinfo=UTC)
    await conn.execute(
        "INSERT INTO h.log VALUES (1, $1, true), (2, $2, false)", old, old - timedelta(days=1)
    )
    # Rows of days without a partition of their own wait in the default partition.
    straggler = datetime(2026, 9, 1, tzinfo=UTC)
    await conn.execute("INSERT INTO h.log VALUES (3, $1, false), (4, $1, true)", straggler)
    assert await conn.fetchval("SELECT count(*) FROM h.log_other") == 2

    now = datetime(2026, 11, 30, 9, tzinfo=UTC)
    dropped = await purge(conn, "h.log", keep=30 * 86400, now=now, live="pending")
    assert "h.log_p20261009" in dropped
    assert "h.log_p20261010" not in dropped  # a pending row is still there
    assert await conn.fetchval("SELECT array_agg(id ORDER BY id) FROM h.log") == [1, 4]
    await ensure(conn, "h.log", today)
