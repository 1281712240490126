"""Idempotency keys on the real PostgreSQL: a key is claimed once while it is kept, also
across the day boundary of its partitions."""

from __future__ import annotations

from collections.abc import AsyncIterator

import asyncpg
import pytest

from postwire_common import db
from postwire_common.partitions import ensure
from postwire_ingest.store import IngestStore
from postwire_testkit.infra import migrated_database, unique_name

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
async def pool() -> AsyncIterator[asyncpg.Pool]:
    async with migrated_database() as url:
        made = await db.create_pool(url)
        async with made.acquire() as conn:
            await ensure(conn, "ingest.idempotency_keys")
        yield made
        await made.close()


async def test_a_key_is_claimed_once_also_across_days(pool: asyncpg.Pool) -> None:
    store = IngestStore(pool)
    account, key = unique_name("acct"), unique_name("key")
    first = await store.accept(account, [], [], (key, b"hash-1", [{"env_id": "E1"}]))
    assert first is None  # claimed
    # The key was claimed yesterday: its row lives in yesterday's partition now.
    await pool.execute(
        "UPDATE ingest.idempotency_keys SET created_at = created_at - interval '1 day' "
        "WHERE account_id = $1",
        account,
    )
    again = await store.accept(account, [], [], (key, b"hash-2", [{"env_id": "E2"}]))
    assert again is not None
    assert (bytes(again["request_hash"]), again["response"]) == (b"hash-1", [{"env_id": "E1"}])
    count = await pool.fetchval(
        "SELECT count(*) FROM ingest.idempotency_keys WHERE account_id = $1", account
    )
    assert count == 1
