"""Suppression lists on the real PostgreSQL: which recorded events add an address, once,
and each change is written to the outbox in the same transaction as the list."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime

import asyncpg
import pytest

from postwire_common import db
from postwire_common.schemas import DeliveryStatus, EventType, MailEvent, SuppressionReason
from postwire_events.store import EventsStore
from postwire_events.suppression_store import SuppressionStore
from postwire_events.suppressions import Suppression
from postwire_testkit.infra import migrated_database, unique_name

pytestmark = pytest.mark.integration
NOW = datetime.now(UTC)


@pytest.fixture(scope="module")
async def pool() -> AsyncIterator[asyncpg.Pool]:
    async with migrated_database() as url:
        made = await db.create_pool(url)
        yield made
        await made.close()


def event(tenant: str, rcpt: str, kind: EventType, status: DeliveryStatus | None) -> MailEvent:
    env_id = unique_name("E")
    return MailEvent(
        event_id=f"{env_id}:{kind.value}", event=kind, env_id=env_id, msg_id=f"<{env_id}@x>",
        tenant_id=tenant, account="s@x", sender="s@x", rcpt=rcpt, status=status,
        recv_time=NOW, time=NOW,
    )  # fmt: skip


async def announced(pool: asyncpg.Pool, tenant: str) -> list[tuple[str, bool, str | None]]:
    rows = await pool.fetch("SELECT body FROM events.outbox ORDER BY id")
    return [
        (c["address"], c["suppressed"], c["reason"])
        for r in rows
        for c in json.loads(bytes(r["body"]))["changes"]
        if c["tenant_id"] == tenant
    ]


async def test_bounces_complaints_and_unsubscribes_suppress_once(pool: asyncpg.Pool) -> None:
    tenant = unique_name("t")
    woken: list[bool] = []
    store = EventsStore(pool, announced=lambda: woken.append(True))
    bounce = event(tenant, "Gone@Example.org", EventType.FAILED, DeliveryStatus.INVALID_ADDRESS)
    events = [
        bounce,
        event(tenant, "spam@example.org", EventType.FAILED, DeliveryStatus.SPAM),
        event(tenant, "other@example.org", EventType.FAILED, DeliveryStatus.FAILED),
        event(tenant, "angry@example.org", EventType.SPAM_REPORT, None),
        event(tenant, "bye@example.org", EventType.UNSUBSCRIBE, None),
        event(tenant, "fine@example.org", EventType.DELIVERED, DeliveryStatus.DELIVERED),
    ]
    await store.record_many(events)
    rows = await pool.fetch(
        "SELECT address, reason, source_env_id FROM events.suppressions WHERE tenant_id = $1 "
        "ORDER BY address",
        tenant,
    )
    assert [tuple(r) for r in rows] == [
        ("angry@example.org", "complaint", events[3].env_id),
        ("bye@example.org", "unsubscribe", events[4].env_id),
        ("gone@example.org", "hard_bounce", bounce.env_id),
    ]
    assert sorted(await announced(pool, tenant)) == [
        ("angry@example.org", True, "complaint"),
        ("bye@example.org", True, "unsubscribe"),
        ("gone@example.org", True, "hard_bounce"),
    ]
    assert woken == [True]

    # Removed by the account, then the same bounce event redelivered: it stays removed.
    suppressions = SuppressionStore(pool)
    await suppressions.remove(tenant, "gone@example.org", NOW)
    await store.record_many([bounce])
    listed = await suppressions.list(tenant, reason=None, address="gone", limit=10, after=None)
    assert listed == []
    assert (await announced(pool, tenant))[-1] == ("gone@example.org", False, None)


async def test_a_manual_addition_keeps_an_existing_entry(pool: asyncpg.Pool) -> None:
    tenant = unique_name("t")
    store = SuppressionStore(pool)
    first = await store.add(
        Suppression(tenant, "a@example.org", SuppressionReason.MANUAL, None, NOW)
    )
    again = await store.add(
        Suppression(tenant, "a@example.org", SuppressionReason.COMPLAINT, None, NOW)
    )
    assert first == again
    assert first["reason"] == "manual"
    assert await announced(pool, tenant) == [("a@example.org", True, "manual")]
