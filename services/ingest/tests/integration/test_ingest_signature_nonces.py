"""Aliyun signature nonces in ingest's table: a nonce is refused the second time by any
process (two pools stand for two processes), per access key, and old rows are swept."""

from __future__ import annotations

from collections.abc import AsyncIterator

import asyncpg
import pytest

from postwire_common import db
from postwire_common.vendors.aliyun import AliyunError, StoredNonces
from postwire_testkit.infra import migrated_database

pytestmark = pytest.mark.integration
TABLE = "ingest.signature_nonces"


@pytest.fixture(scope="module")
async def pools() -> AsyncIterator[tuple[asyncpg.Pool, asyncpg.Pool]]:
    async with migrated_database() as url:
        one, two = await db.create_pool(url, size=2), await db.create_pool(url, size=2)
        yield one, two
        await one.close()
        await two.close()


async def test_a_nonce_used_by_one_process_is_refused_by_another(
    pools: tuple[asyncpg.Pool, asyncpg.Pool],
) -> None:
    first, second = StoredNonces(pools[0], TABLE), StoredNonces(pools[1], TABLE)
    await first.use("acme.trigger", "n-1")
    with pytest.raises(AliyunError) as replayed:
        await second.use("acme.trigger", "n-1")
    assert replayed.value.code == "SignatureNonceUsed"
    await second.use("globex.trigger", "n-1")  # another access key's nonce space


async def test_rows_past_twice_the_window_are_swept(
    pools: tuple[asyncpg.Pool, asyncpg.Pool],
) -> None:
    pool = pools[0]
    await pool.execute(
        f"INSERT INTO {TABLE} (access_key_id, nonce, used_at) "
        "VALUES ('old', 'n', now() - interval '1 hour'), ('recent', 'n', now())"
    )
    await StoredNonces(pool, TABLE).use("sweeper", "n")  # a fresh book sweeps at once
    left = {r["access_key_id"] for r in await pool.fetch(f"SELECT access_key_id FROM {TABLE}")}
    assert "old" not in left
    assert {"recent", "sweeper"} <= left
