"""The content store on the real PostgreSQL: stored once, read back byte for byte, read
once for concurrent sends, prefetched in one statement (small ones), missing is an error."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import asyncpg
import pytest

from postwire_common import db
from postwire_common.content import ContentMissing, ContentStore, StoredContent, render
from postwire_testkit.infra import migrated_database, unique_name

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
async def pool() -> AsyncIterator[asyncpg.Pool]:
    async with migrated_database() as url:
        made = await db.create_pool(url)
        yield made
        await made.close()


async def test_contents_read_back_exactly_and_render_each_copy(pool: asyncpg.Pool) -> None:
    writer, reader = ContentStore(pool), ContentStore(pool)
    small = StoredContent(b"From: a@x\r\nSubject: s\r\n", b"MIME-Version: 1.0\r\n\r\nhi\r\n")
    large = StoredContent(b"From: a@x\r\n", b"MIME-Version: 1.0\r\n\r\n" + b"x" * 600_000)
    ids = unique_name("small"), unique_name("large")
    await writer.put(ids[0], "acct", small)
    await writer.put(ids[1], "acct", large)
    await writer.put(ids[0], "acct", small)  # again: nothing changes
    reader.prefetch(list(ids))
    got = await asyncio.gather(*(reader.get(i) for i in (*ids, *ids)))
    assert got == [small, large, small, large]
    copy = render(got[0], "r@y", "<m@x>", "E1")
    assert (
        copy
        == small.head + b"To: r@y\r\nMessage-ID: <m@x>\r\nX-Postwire-Env-Id: E1\r\n" + small.body
    )


async def test_a_missing_content_is_an_error(pool: asyncpg.Pool) -> None:
    store = ContentStore(pool)
    store.prefetch(["nope"])
    with pytest.raises(ContentMissing):
        await store.get("nope")
