"""The TLS mode a recipient was accepted with stays with its queue row (real PostgreSQL):
intake stores each batch's mode, claims and look-ups hand it back as a ``TlsMode``."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime

import asyncpg
import pytest

from postwire_common import db
from postwire_common.schemas import Recipient, RecipientBatch, TlsMode
from postwire_delivery.store import DeliveryStore
from postwire_testkit.infra import migrated_database, unique_name

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
async def store() -> AsyncIterator[DeliveryStore]:
    async with migrated_database() as url:
        pool: asyncpg.Pool = await db.create_pool(url)
        yield DeliveryStore(pool)
        await pool.close()


def batch(domain: str, env_id: str, **tls: TlsMode) -> RecipientBatch:
    return RecipientBatch(
        request_id="req",
        content_id="req",
        tenant_id="t",
        sender="s@shop.example",
        domain=domain,
        recv_time=datetime.now(UTC),
        recipients=[Recipient(env_id=env_id, msg_id=f"<{env_id}@x>", rcpt=f"r@{domain}")],
        **tls,
    )


async def test_each_row_keeps_its_batchs_mode(store: DeliveryStore) -> None:
    lane = unique_name("tls") + ".example"
    ids = {mode: unique_name(mode.value) for mode in TlsMode}
    batches = [batch(lane, env_id, tls=mode) for mode, env_id in ids.items()]
    batches.append(batch(lane, unique_name("default")))  # a producer that never said
    assert await store.intake([(b, lane) for b in batches]) == (4, 4)

    claimed = {q.env_id: q.tls for q in await store.claim("me", 1000, [], 30.0) if q.lane == lane}
    assert claimed == {
        **{env_id: mode for mode, env_id in ids.items()},
        batches[-1].recipients[0].env_id: TlsMode.OPPORTUNISTIC,
    }
    assert all(isinstance(mode, TlsMode) for mode in claimed.values())
    found = await store.queued(ids[TlsMode.REQUIRE])
    assert found is not None
    assert found.tls is TlsMode.REQUIRE
