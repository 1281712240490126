"""Tasks on the real PostgreSQL: a due task is claimed by exactly one of many runners,
a start and a cancel racing each other leave one winner, a runner's lost lease lets
another take the task over, and a template in use by a scheduled task is held."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import asyncpg
import pytest

from postwire_common import db
from postwire_common.errors import NotAvailable
from postwire_common.ids import new_id
from postwire_ingest.task_store import NewTask, TaskStore
from postwire_testkit.infra import migrated_database, unique_name

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
async def pool() -> AsyncIterator[asyncpg.Pool]:
    async with migrated_database() as url:
        made: asyncpg.Pool = await db.create_pool(url)
        yield made
        await made.close()


async def task(pool: asyncpg.Pool, *, send_at: datetime | None = None) -> NewTask:
    account_id = unique_name("acct")
    await pool.execute("INSERT INTO ingest.accounts (id, name) VALUES ($1, $1)", account_id)
    made = NewTask(
        id=new_id(), account_id=account_id, api_user=f"{account_id}.u", user_type="trigger",
        name="t", template_id=unique_name("tpl"), template_version=1, subject=None,
        sender="news@shop.example", label=None, send_at=send_at or datetime.now(UTC),
        recipients=[{"row": 1, "address": "a@example.org", "variables": {}}], invalid_rows=[],
    )  # fmt: skip
    await TaskStore(pool).create(made)
    return made


async def claimed_by(store: TaskStore, owners: list[str], task_id: str) -> list[str]:
    found = await asyncio.gather(*(store.claim(owner, 60) for owner in owners))
    return [owner for owner, row in zip(owners, found, strict=True) if row and row["id"] == task_id]


async def test_a_due_task_is_claimed_by_exactly_one_runner(pool: asyncpg.Pool) -> None:
    store = TaskStore(pool)
    made = await task(pool, send_at=datetime.now(UTC) - timedelta(days=3650))  # first in line
    assert len(await claimed_by(store, [f"r{n}" for n in range(6)], made.id)) == 1
    assert (await store.get(made.account_id, made.id))["state"] == "sending"


async def test_a_start_and_a_cancel_leave_one_winner(pool: asyncpg.Pool) -> None:
    store = TaskStore(pool)
    for _ in range(5):
        made = await task(pool, send_at=datetime.now(UTC) - timedelta(days=3650))
        claim, cancel = await asyncio.gather(
            store.claim("runner", 60), store.cancel(made.account_id, made.id),
            return_exceptions=True,
        )  # fmt: skip
        state = (await store.get(made.account_id, made.id))["state"]
        started = (
            not isinstance(claim, BaseException) and claim is not None and claim["id"] == made.id
        )
        if state == "cancelled":
            assert not started
        else:
            assert state == "sending"
            assert started
            assert isinstance(cancel, NotAvailable)
        if state == "sending":  # leave the queue of due tasks clean for the other tests
            await store.finish(made.id, "runner", queued=1, suppressed=0, error=None)


async def test_a_lost_lease_lets_another_runner_take_the_task_over(pool: asyncpg.Pool) -> None:
    store = TaskStore(pool)
    made = await task(pool, send_at=datetime.now(UTC) - timedelta(days=3650))
    first = await store.claim("dead", 0.2)
    assert first is not None
    assert first["id"] == made.id
    await store.finish(made.id, "someone-else", queued=9, suppressed=0, error=None)  # not its
    assert (await store.get(made.account_id, made.id))["state"] == "sending"
    await asyncio.sleep(0.3)
    again = await store.claim("alive", 60)
    assert again is not None
    assert again["id"] == made.id
    await store.finish(made.id, "alive", queued=1, suppressed=0, error=None)
    done = await store.get(made.account_id, made.id)
    assert (done["state"], done["queued"]) == ("completed", 1)


async def test_a_scheduled_task_holds_its_template(pool: asyncpg.Pool) -> None:
    made = await task(pool, send_at=datetime.now(UTC) + timedelta(hours=1))
    async with pool.acquire() as conn:
        assert await TaskStore.uses_template(conn, made.template_id)
        await TaskStore(pool).cancel(made.account_id, made.id)
        assert not await TaskStore.uses_template(conn, made.template_id)
