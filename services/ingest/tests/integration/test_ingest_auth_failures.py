"""Failed SMTP AUTH attempts on the real PostgreSQL: counted per address and per user
across processes (one table), within the window only."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import asyncpg
import pytest

from postwire_common import db
from postwire_ingest.submission.throttle import LOCK_AFTER, WINDOW_SECONDS, AuthFailures
from postwire_testkit.infra import migrated_database, unique_name

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
async def pool() -> AsyncIterator[asyncpg.Pool]:
    async with migrated_database() as url:
        made: asyncpg.Pool = await db.create_pool(url)
        yield made
        await made.close()


async def test_failures_counted_by_address_and_user_and_shared(pool: asyncpg.Pool) -> None:
    ip, user = unique_name("ip"), unique_name("user")
    one, other = AuthFailures(pool), AuthFailures(pool)  # two processes
    assert (await one.recent(ip, user)).delay == 0
    await asyncio.gather(*(one.record(ip, f"{user}{n}") for n in range(LOCK_AFTER - 1)))
    await other.record("elsewhere", user)
    seen = await other.recent(ip, user)
    assert (seen.by_address, seen.by_user) == (LOCK_AFTER - 1, 1)
    assert not seen.locked
    await other.record(ip, user)
    assert (await one.recent(ip, "anyone")).locked
    assert not (await one.recent("elsewhere", "anyone")).locked


async def test_failures_age_out_of_the_window(pool: asyncpg.Pool) -> None:
    ip, user = unique_name("ip"), unique_name("user")
    failures = AuthFailures(pool)
    for _ in range(LOCK_AFTER):
        await failures.record(ip, user)
    await pool.execute(
        "UPDATE ingest.auth_failures SET at = at - make_interval(secs => $2) WHERE key = $1",
        f"ip:{ip}",
        WINDOW_SECONDS + 1,
    )
    assert not (await failures.recent(ip, user)).locked
    await failures.record("new", unique_name("user"))  # deletes what is out of the window
    left = await pool.fetchval(
        "SELECT count(*) FROM ingest.auth_failures WHERE key = $1", f"ip:{ip}"
    )
    assert left == 0
