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
from postwire_ingest.task_store import NewTask, TaskStore, Upload
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
    )  # fmt: skip
    await TaskStore(pool).create(
        made, [{"row": 1, "address": "a@example.org", "variables": {}}], []
    )
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
            await store.finish(made.id, "runner", error=None)


async def test_a_lost_lease_lets_another_runner_take_the_task_over(pool: asyncpg.Pool) -> None:
    store = TaskStore(pool)
    made = await task(pool, send_at=datetime.now(UTC) - timedelta(days=3650))
    first = await store.claim("dead", 0.2)
    assert first is not None
    assert first["id"] == made.id
    await store.finish(made.id, "someone-else", error=None)  # not its
    assert not await store.sent(
        made.id, "someone-else", through=1, queued=1, suppressed=0, lease=60
    )
    assert (await store.get(made.account_id, made.id))["state"] == "sending"
    await asyncio.sleep(0.3)
    again = await store.claim("alive", 60)
    assert again is not None
    assert again["id"] == made.id
    assert not await store.sent(made.id, "dead", through=1, queued=1, suppressed=0, lease=60)
    assert await store.sent(made.id, "alive", through=1, queued=1, suppressed=0, lease=60)
    await store.finish(made.id, "alive", error=None)
    done = await store.get(made.account_id, made.id)
    assert (done["state"], done["queued"]) == ("completed", 1)


async def test_a_scheduled_task_holds_its_template(pool: asyncpg.Pool) -> None:
    made = await task(pool, send_at=datetime.now(UTC) + timedelta(hours=1))
    async with pool.acquire() as conn:
        assert await TaskStore.uses_template(conn, made.template_id)
        await TaskStore(pool).cancel(made.account_id, made.id)
        assert not await TaskStore.uses_template(conn, made.template_id)


async def test_rows_keep_the_first_of_each_address_and_report_the_rest(pool: asyncpg.Pool) -> None:
    store = TaskStore(pool)
    made = await task(pool, send_at=datetime.now(UTC) + timedelta(hours=1))
    # Row 1 (a@example.org) came with the task; a file's batches may repeat it in any case.
    async with pool.acquire() as conn:
        await conn.execute(
            "UPDATE ingest.tasks SET state = 'preparing', lease_owner = 'me' WHERE id = $1",
            made.id,
        )
    batch = [
        {"row": 2, "address": "B@example.org", "variables": {"n": "2"}},
        {"row": 3, "address": "A@Example.org", "variables": {}},
        {"row": 4, "address": "b@example.org", "variables": {}},
    ]
    bad = [{"row": 5, "address": "nope", "reason": "not an address"}]
    assert await store.add_rows(made.id, "me", batch, bad, 60)
    assert not await store.add_rows(made.id, "another", batch, bad, 60)  # not its lease
    await store.prepared(made.id, "me", error=None)
    shown = await store.get(made.account_id, made.id)
    assert shown["state"] == "scheduled"
    assert (shown["total"] - 1, shown["invalid"]) == (4, 3)
    assert [(r["row"], r["reason"]) for r in shown["invalid_rows"]] == [
        (3, "duplicate of row 1"), (4, "duplicate of row 2"), (5, "not an address"),
    ]  # fmt: skip
    sending = await store.next_rows(made.id, 0, 100)
    assert [(r["row"], r["address"], r["variables"]) for r in sending] == [
        (1, "a@example.org", {}), (2, "B@example.org", {"n": "2"}),
    ]  # fmt: skip
    assert await store.next_rows(made.id, 2, 100) == []
    page = await store.invalid_rows(made.account_id, made.id, after=3, limit=1)
    assert [r["row"] for r in page] == [4]


async def test_an_upload_is_kept_whole_until_expanded(pool: asyncpg.Pool) -> None:
    import io
    import tempfile

    store = TaskStore(pool)
    account_id = unique_name("acct")
    await pool.execute("INSERT INTO ingest.accounts (id, name) VALUES ($1, $1)", account_id)
    made = NewTask(
        id=new_id(), account_id=account_id, api_user=f"{account_id}.u", user_type="batch",
        name="t", template_id=unique_name("tpl"), template_version=1, subject=None,
        sender="news@shop.example", label=None, send_at=datetime.now(UTC) + timedelta(hours=1),
    )  # fmt: skip
    data = bytes(range(256)) * 10_000  # 2.5 MB: three parts
    shown = await store.create_upload(made, Upload("r.csv", "csv", io.BytesIO(data), len(data)))
    assert (shown["state"], shown["file_size"]) == ("preparing", len(data))
    claimed = await store.claim_preparing("me", 60)
    assert claimed is not None
    assert claimed["id"] == made.id
    assert await store.claim_preparing("other", 60) is None  # leased
    with tempfile.TemporaryFile() as copy:
        await store.copy_file(made.id, copy)
        copy.seek(0)
        assert copy.read() == data
    await store.prepared(made.id, "me", error="file: no row with a valid address")
    shown = await store.get(account_id, made.id)
    assert (shown["state"], shown["error"]) == ("failed", "file: no row with a valid address")
    assert (
        await pool.fetchval("SELECT count(*) FROM ingest.task_files WHERE task_id = $1", made.id)
        == 0
    )


async def test_a_preparing_task_can_be_cancelled_and_its_expander_stops(pool: asyncpg.Pool) -> None:
    import io

    store = TaskStore(pool)
    account_id = unique_name("acct")
    await pool.execute("INSERT INTO ingest.accounts (id, name) VALUES ($1, $1)", account_id)
    made = NewTask(
        id=new_id(), account_id=account_id, api_user=f"{account_id}.u", user_type="batch",
        name="t", template_id=unique_name("tpl"), template_version=1, subject=None,
        sender="news@shop.example", label=None, send_at=datetime.now(UTC) - timedelta(days=1),
    )  # fmt: skip
    await store.create_upload(made, Upload("r.csv", "csv", io.BytesIO(b"address\n"), 8))
    assert (await store.claim_preparing("me", 60))["id"] == made.id  # type: ignore[index]
    assert (await store.cancel(account_id, made.id))["state"] == "cancelled"
    row = [{"row": 2, "address": "x@example.org", "variables": {}}]
    assert not await store.add_rows(made.id, "me", row, [], 60)
    await store.prepared(made.id, "me", error=None)  # too late: stays cancelled
    assert (await store.get(account_id, made.id))["state"] == "cancelled"
    claimed = await store.claim("runner", 60)
    assert claimed is None or claimed["id"] != made.id  # a cancelled task is never due
    if claimed is not None:
        await store.finish(claimed["id"], "runner", error=None)


async def test_counts_from_events_apply_only_when_newer(pool: asyncpg.Pool) -> None:
    store = TaskStore(pool)
    made = await task(pool, send_at=datetime.now(UTC) + timedelta(hours=1))
    t0 = datetime.now(UTC)
    await store.record_counts(made.account_id, made.id, delivered=5, failed=0, time=t0)
    later = t0 + timedelta(seconds=1)
    await store.record_counts(made.account_id, made.id, delivered=4, failed=1, time=later)
    await store.record_counts(made.account_id, made.id, delivered=5, failed=0, time=t0)  # late
    await store.record_counts("another", made.id, delivered=9, failed=9, time=later)  # not its
    shown = await store.get(made.account_id, made.id)
    assert (shown["delivered"], shown["failed"]) == (4, 1)


async def test_a_released_task_is_taken_over_at_once(pool: asyncpg.Pool) -> None:
    store = TaskStore(pool)
    made = await task(pool, send_at=datetime.now(UTC) - timedelta(days=3650))
    claimed = await store.claim("stopping", 60)
    assert claimed is not None
    assert claimed["id"] == made.id
    await store.release(made.id, "someone-else")  # not its lease: nothing changes
    again = await store.claim("next", 60)
    assert again is None or again["id"] != made.id
    await store.release(made.id, "stopping")  # a runner shutting down hands it over
    again = await store.claim("next", 60)
    assert again is not None
    assert again["id"] == made.id
    await store.finish(made.id, "next", error=None)
