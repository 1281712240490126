"""Idempotency keys on the real PostgreSQL: a key is claimed once while it is kept, also
across the day boundary of its partitions."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime

import asyncpg
import pytest

from postwire_common import db
from postwire_common.broker.publish import Outgoing
from postwire_common.content import StoredContent
from postwire_common.partitions import ensure
from postwire_ingest.store import IngestStore, KeyedRequest, MessageRow
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


def keyed(account: str, key: str, tag: str) -> KeyedRequest:
    env_id = unique_name("env")
    row = MessageRow(
        env_id, f"req-{tag}", "acct.user", f"<{tag}@x>", "news@x.example", "ann@x.example",
        "subject", None, "queued", 10, datetime.now(UTC),
    )  # fmt: skip
    out = Outgoing("postwire.events", "ingest.request", b'{"events": []}', env_id)
    content = StoredContent(b"", f"Subject: {tag}\r\n\r\nbody".encode())
    return KeyedRequest(account, key, tag.encode(), [{"env_id": env_id}], [row], [out],
                        [(f"content-{env_id}", content)])  # fmt: skip


async def test_keyed_requests_in_one_batch_claim_each_key_once(pool: asyncpg.Pool) -> None:
    store = IngestStore(pool)
    account, other = unique_name("acct"), unique_name("acct")
    claimed_before = keyed(account, "k0", "zero")
    assert await store.accept_keyed_many([claimed_before]) == [None]
    batch = [
        keyed(account, "k1", "one"),
        keyed(account, "k2", "two"),
        keyed(account, "k1", "one-again"),  # a retry in flight with the first
        keyed(account, "k0", "zero-again"),
        keyed(other, "k1", "other-account"),  # keys are per account
    ]
    results = await store.accept_keyed_many(batch)
    assert [results[n] for n in (0, 1, 4)] == [None, None, None]
    assert bytes(results[2]["request_hash"]) == b"one"  # answered as the first
    assert results[2]["response"] == batch[0].response
    assert bytes(results[3]["request_hash"]) == b"zero"
    written = {r.rows[0].env_id for r in (claimed_before, batch[0], batch[1], batch[4])}
    found = await pool.fetch(
        "SELECT env_id FROM ingest.messages WHERE env_id = ANY($1::text[])",
        [r.rows[0].env_id for r in [claimed_before, *batch]],
    )
    assert {r["env_id"] for r in found} == written
    outbox = await pool.fetchval(
        "SELECT count(*) FROM ingest.outbox WHERE message_id = ANY($1::text[])",
        [r.rows[0].env_id for r in [claimed_before, *batch]],
    )
    assert outbox == len(written)
    contents = await pool.fetch(
        "SELECT id FROM ingest.contents WHERE id = ANY($1::text[])",
        [r.contents[0][0] for r in [claimed_before, *batch]],
    )
    assert {r["id"] for r in contents} == {f"content-{e}" for e in written}
