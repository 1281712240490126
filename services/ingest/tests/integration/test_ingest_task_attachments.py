"""A task's attachments on the real PostgreSQL: only the account's own task (another's
answers as a missing one), only before it starts sending, 4 MB in all (exactly 4 MB
fits, and uploads at once cannot overshoot it together), at most 10 files, no two of one
name; the runner reads them back as ``compose.Attachment``s in the order added."""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import asyncpg
import pytest

from postwire_common import db
from postwire_common.errors import InvalidValue, NotAvailable, NotFound, SizeExceeded
from postwire_common.ids import new_id
from postwire_ingest.compose import Attachment
from postwire_ingest.limits import MAX_TASK_ATTACHMENT_BYTES, MAX_TASK_ATTACHMENTS
from postwire_ingest.task_attachment_store import TaskAttachmentStore
from postwire_testkit.infra import migrated_database, unique_name

pytestmark = pytest.mark.integration

MB = 1024 * 1024


@pytest.fixture(scope="module")
async def pool() -> AsyncIterator[asyncpg.Pool]:
    async with migrated_database() as url:
        made: asyncpg.Pool = await db.create_pool(url)
        yield made
        await made.close()


async def account(pool: asyncpg.Pool) -> str:
    account_id = unique_name("acct")
    await pool.execute("INSERT INTO ingest.accounts (id, name) VALUES ($1, $1)", account_id)
    return account_id


async def task(pool: asyncpg.Pool, account_id: str, state: str = "scheduled") -> str:
    """A minimal task row (not through TaskStore, whose shape is changing)."""
    task_id = new_id()
    await pool.execute(
        "INSERT INTO ingest.tasks (id, account_id, api_user, user_type, name, template_id, "
        "template_version, sender, send_at, state) "
        "VALUES ($1, $2, $3, 'batch', 't', $4, 1, 'news@shop.example', $5, $6)",
        task_id,
        account_id,
        f"{account_id}.batch",
        new_id(),
        datetime.now(UTC) + timedelta(days=1),
        state,
    )
    return task_id


async def test_add_list_read_back_and_delete(pool: asyncpg.Pool) -> None:
    store, me = TaskAttachmentStore(pool), await account(pool)
    mine = await task(pool, me)
    first = await store.add(me, mine, "price list.pdf", "application/pdf", b"%PDF-1.7 one")
    second = await store.add(me, mine, "logo.png", "image/png", b"\x89PNG two")
    assert set(first) == {"id", "filename", "content_type", "size", "created_at"}
    assert (first["filename"], first["content_type"], first["size"]) == (
        "price list.pdf",
        "application/pdf",
        len(b"%PDF-1.7 one"),
    )
    listed = await store.list(me, mine)
    assert [r["id"] for r in listed] == [first["id"], second["id"]]
    assert all("data" not in r for r in listed)
    assert await store.for_task(mine) == (
        Attachment("price list.pdf", b"%PDF-1.7 one", "application/pdf"),
        Attachment("logo.png", b"\x89PNG two", "image/png"),
    )

    await store.delete(me, mine, first["id"])
    assert [r["id"] for r in await store.list(me, mine)] == [second["id"]]
    with pytest.raises(NotFound, match="no attachment"):
        await store.delete(me, mine, first["id"])
    assert await store.clear(me, mine) == 1
    assert await store.list(me, mine) == []
    assert await store.for_task(mine) == ()


async def test_another_accounts_task_answers_as_a_missing_one(pool: asyncpg.Pool) -> None:
    store, me, other = TaskAttachmentStore(pool), await account(pool), await account(pool)
    theirs = await task(pool, other)
    held = await store.add(other, theirs, "a.txt", "text/plain", b"theirs")
    missing = new_id()
    for task_id in (theirs, missing):
        with pytest.raises(NotFound, match=f"^no task {task_id}$"):
            await store.list(me, task_id)
        with pytest.raises(NotFound, match=f"^no task {task_id}$"):
            await store.add(me, task_id, "b.txt", "text/plain", b"mine")
        with pytest.raises(NotFound, match=f"^no task {task_id}$"):
            await store.delete(me, task_id, held["id"])
        with pytest.raises(NotFound, match=f"^no task {task_id}$"):
            await store.clear(me, task_id)
    assert [r["id"] for r in await store.list(other, theirs)] == [held["id"]]


@pytest.mark.parametrize("state", ["sending", "completed", "cancelled", "failed"])
async def test_a_started_or_finished_task_keeps_its_attachments(
    pool: asyncpg.Pool, state: str
) -> None:
    store, me = TaskAttachmentStore(pool), await account(pool)
    mine = await task(pool, me)
    held = await store.add(me, mine, "a.txt", "text/plain", b"kept")
    await pool.execute("UPDATE ingest.tasks SET state = $2 WHERE id = $1", mine, state)
    with pytest.raises(NotAvailable, match=f"is {state}: attachments can be added only"):
        await store.add(me, mine, "b.txt", "text/plain", b"late")
    with pytest.raises(NotAvailable, match=f"is {state}: attachments can be removed only"):
        await store.delete(me, mine, held["id"])
    with pytest.raises(NotAvailable):
        await store.clear(me, mine)
    assert [r["id"] for r in await store.list(me, mine)] == [held["id"]]


async def test_a_preparing_task_still_takes_attachments(pool: asyncpg.Pool) -> None:
    store, me = TaskAttachmentStore(pool), await account(pool)
    mine = await task(pool, me, state="preparing")
    held = await store.add(me, mine, "a.txt", "text/plain", b"x")
    await store.delete(me, mine, held["id"])


async def test_four_mb_in_all(pool: asyncpg.Pool) -> None:
    store, me = TaskAttachmentStore(pool), await account(pool)
    assert MAX_TASK_ATTACHMENT_BYTES == 4 * MB
    whole = await task(pool, me)
    await store.add(me, whole, "whole.bin", "application/octet-stream", b"a" * (4 * MB))
    with pytest.raises(SizeExceeded, match="4 MB in all"):
        await store.add(me, whole, "one-more.bin", "application/octet-stream", b"b")

    alone = await task(pool, me)
    with pytest.raises(SizeExceeded):
        await store.add(me, alone, "big.bin", "application/octet-stream", b"a" * (4 * MB + 1))
    assert await store.list(me, alone) == []

    summed = await task(pool, me)
    first = await store.add(me, summed, "three.bin", "application/octet-stream", b"a" * (3 * MB))
    with pytest.raises(SizeExceeded):
        await store.add(me, summed, "over.bin", "application/octet-stream", b"b" * (MB + 1))
    await store.add(me, summed, "one.bin", "application/octet-stream", b"b" * MB)  # exactly 4
    await store.delete(me, summed, first["id"])  # frees its room
    await store.add(me, summed, "again.bin", "application/octet-stream", b"c" * (3 * MB))
    assert sum(r["size"] for r in await store.list(me, summed)) == 4 * MB


async def test_uploads_at_once_cannot_overshoot_the_total(pool: asyncpg.Pool) -> None:
    store, me = TaskAttachmentStore(pool), await account(pool)
    mine = await task(pool, me)
    results = await asyncio.gather(
        *(
            store.add(me, mine, f"part-{n}.bin", "application/octet-stream", b"x" * MB)
            for n in range(8)
        ),
        return_exceptions=True,
    )
    assert sum(isinstance(r, SizeExceeded) for r in results) == 4
    assert sum(isinstance(r, dict) for r in results) == 4
    assert sum(r["size"] for r in await store.list(me, mine)) == 4 * MB


async def test_an_upload_racing_the_start_is_sent_or_refused(pool: asyncpg.Pool) -> None:
    """The state checked under the row lock is the state committed under: an add that
    wins is in before the task starts (so the runner reads it), one that loses is
    refused; none lands after the runner read the task's attachments."""
    store, me = TaskAttachmentStore(pool), await account(pool)

    async def start_and_read(task_id: str) -> tuple[Attachment, ...]:
        await pool.execute("UPDATE ingest.tasks SET state = 'sending' WHERE id = $1", task_id)
        return await store.for_task(task_id)

    for _ in range(10):
        mine = await task(pool, me)
        added, read = await asyncio.gather(
            store.add(me, mine, "a.txt", "text/plain", b"x"),
            start_and_read(mine),
            return_exceptions=True,
        )
        assert isinstance(read, tuple)
        if isinstance(added, NotAvailable):
            assert read == ()
        else:
            assert isinstance(added, dict), added
            assert read == (Attachment("a.txt", b"x", "text/plain"),)


async def test_at_most_ten_files_none_of_the_same_name(pool: asyncpg.Pool) -> None:
    store, me = TaskAttachmentStore(pool), await account(pool)
    mine = await task(pool, me)
    await store.add(me, mine, "Report.pdf", "application/pdf", b"1")
    with pytest.raises(InvalidValue, match=re.escape("has an attachment named 'report.PDF'")):
        await store.add(me, mine, "report.PDF", "application/pdf", b"2")
    await store.add(me, await task(pool, me), "Report.pdf", "application/pdf", b"3")  # own task
    for n in range(2, MAX_TASK_ATTACHMENTS + 1):
        await store.add(me, mine, f"file-{n}.txt", "text/plain", b"n")
    with pytest.raises(SizeExceeded, match=f"at most {MAX_TASK_ATTACHMENTS} attachments"):
        await store.add(me, mine, "eleventh.txt", "text/plain", b"n")
    assert len(await store.list(me, mine)) == MAX_TASK_ATTACHMENTS


async def test_attachments_go_with_their_task(pool: asyncpg.Pool) -> None:
    store, me = TaskAttachmentStore(pool), await account(pool)
    mine = await task(pool, me)
    await store.add(me, mine, "a.txt", "text/plain", b"x")
    await pool.execute("DELETE FROM ingest.tasks WHERE id = $1", mine)
    assert await store.for_task(mine) == ()
