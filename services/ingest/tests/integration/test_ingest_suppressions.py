"""ingest's copy of the suppression lists: changes apply in time order, whatever order
they arrive in, and lookups are by lower-cased address within one account."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import asyncpg
import pytest

from postwire_common import db
from postwire_common.crypto import Keyring, generate_key
from postwire_common.schemas import SuppressionChange, SuppressionReason
from postwire_ingest.store import IngestStore
from postwire_testkit.infra import migrated_database, unique_name

pytestmark = pytest.mark.integration
T0 = datetime.now(UTC)


@pytest.fixture(scope="module")
async def store() -> AsyncIterator[IngestStore]:
    async with migrated_database() as url:
        pool: asyncpg.Pool = await db.create_pool(url)
        yield IngestStore(pool, Keyring([generate_key()]))
        await pool.close()


def change(tenant: str, suppressed: bool, seconds: int) -> SuppressionChange:
    return SuppressionChange(
        tenant_id=tenant,
        address="x@example.org",
        suppressed=suppressed,
        reason=SuppressionReason.HARD_BOUNCE if suppressed else None,
        time=T0 + timedelta(seconds=seconds),
    )


async def test_a_late_older_change_does_not_undo_a_newer_one(store: IngestStore) -> None:
    tenant = unique_name("t")
    await store.apply_suppressions([change(tenant, False, 2)])  # removed at t+2 ...
    await store.apply_suppressions([change(tenant, True, 1)])  # ... added at t+1, arrives late
    assert await store.suppressed([(tenant, ["x@example.org"])]) == [{}]
    await store.apply_suppressions([change(tenant, True, 3)])
    assert await store.suppressed(
        [(tenant, ["X@Example.ORG", "y@example.org"]), (unique_name("other"), ["x@example.org"])]
    ) == [{"x@example.org": "hard_bounce"}, {}]
    # Within one message the last change of an address wins.
    await store.apply_suppressions([change(tenant, True, 4), change(tenant, False, 5)])
    assert await store.suppressed([(tenant, ["x@example.org"])]) == [{}]
