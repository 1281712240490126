"""Labels on the real PostgreSQL: names are unique per account, the limit holds under
concurrent creation, pages follow creation order, and another account's labels are
invisible."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import asyncpg
import pytest

from postwire_common import db
from postwire_common.errors import AlreadyExists, NotAvailable, NotFound
from postwire_ingest.label_store import LabelStore
from postwire_ingest.labels import Labels
from postwire_testkit.infra import migrated_database, unique_name

pytestmark = pytest.mark.integration


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


async def test_create_list_show_delete(pool: asyncpg.Pool) -> None:
    store, me, other = LabelStore(pool), await account(pool), await account(pool)
    made = [await store.create(me, f"label-{n}", 100) for n in range(5)]
    assert len({m["id"] for m in made}) == 5
    with pytest.raises(AlreadyExists):
        await store.create(me, "label-0", 100)
    assert (await store.create(me, "label-0", 100, existing_ok=True))["id"] == made[0]["id"]
    assert (await store.create(other, "label-0", 100))["id"] != made[0]["id"]  # per account

    first = await store.list(me, after=None, limit=3)
    rest = await store.list(me, after=(first[-1]["created_at"], first[-1]["id"]), limit=3)
    assert [r["name"] for r in first + rest] == [f"label-{n}" for n in range(5)]
    assert (await store.get(me, made[2]["id"]))["name"] == "label-2"
    with pytest.raises(NotFound):
        await store.get(other, made[2]["id"])
    with pytest.raises(NotFound):
        await store.delete(other, made[2]["id"])
    await store.delete(me, made[2]["id"])
    with pytest.raises(NotFound):
        await store.get(me, made[2]["id"])


async def test_the_limit_holds_when_labels_are_created_at_once(pool: asyncpg.Pool) -> None:
    store, me = LabelStore(pool), await account(pool)
    results = await asyncio.gather(
        *(store.create(me, f"l{n}", 5) for n in range(12)), return_exceptions=True
    )
    refused = [r for r in results if isinstance(r, NotAvailable)]
    assert len(refused) == 7
    assert len(await store.list(me, after=None, limit=100)) == 5


async def test_ensure_makes_a_label_once_and_remembers_it(pool: asyncpg.Pool) -> None:
    labels, me = Labels(LabelStore(pool)), await account(pool)
    await asyncio.gather(*(labels.ensure(me, "promo") for _ in range(5)))
    [row] = await labels.store.list(me, after=None, limit=10)
    assert row["name"] == "promo"
    await labels.store.delete(me, row["id"])
    await labels.ensure(me, "promo")  # remembered: no query, so not made again here
    assert await labels.store.list(me, after=None, limit=10) == []
    labels.forget(me)
    await labels.ensure(me, "promo")
    assert [r["name"] for r in await labels.store.list(me, after=None, limit=10)] == ["promo"]
