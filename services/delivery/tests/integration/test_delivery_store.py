"""delivery's queue table against the real PostgreSQL: the guarantees live here.

- a recipient redelivered on the bus is queued once, and never again once it is finished;
- a terminal result takes it out of the queue in the same statement, so it is never sent
  after its result is recorded; a stale duplicate result changes nothing;
- a soft result makes it due again later, at the next attempt;
- claims are leased: another owner cannot take a leased row until the lease runs out, a
  released row is free at once, and full lanes are left out.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime

import asyncpg
import pytest

from postwire_common import db
from postwire_common.broker.publish import Outgoing
from postwire_common.schemas import DeliveryStatus, DkimKey, Recipient, RecipientBatch
from postwire_delivery.results import DeliveryResult, Outcome, hard, soft
from postwire_delivery.store import DeliveryStore, Finished, Queued
from postwire_testkit.infra import migrated_database, unique_name

pytestmark = pytest.mark.integration

DELIVERED = DeliveryResult(Outcome.DELIVERED, DeliveryStatus.DELIVERED, 250, "ok", "mx")


@pytest.fixture(scope="module")
async def pool() -> AsyncIterator[asyncpg.Pool]:
    async with migrated_database() as url:
        made = await db.create_pool(url)
        yield made
        await made.close()


@pytest.fixture
def store(pool: asyncpg.Pool) -> DeliveryStore:
    return DeliveryStore(pool)


def batch(domain: str, *env_ids: str) -> RecipientBatch:
    return RecipientBatch(
        request_id="req",
        content_id="req",
        tenant_id="t",
        sender="s@shop.example",
        domain=domain,
        recv_time=datetime.now(UTC),
        recipients=[Recipient(env_id=e, msg_id=f"<{e}@x>", rcpt=f"{e}@{domain}") for e in env_ids],
    )


async def queued(pool: asyncpg.Pool, *env_ids: str) -> list[asyncpg.Record]:
    return list(
        await pool.fetch(
            "SELECT env_id, attempt, due_at > now() AS later, lease_owner FROM delivery.queue "
            "WHERE env_id = ANY($1::text[]) ORDER BY env_id",
            list(env_ids),
        )
    )


async def claim_all(store: DeliveryStore, owner: str, lane: str) -> list[Queued]:
    found = await store.claim(owner, 1000, [], 30.0)
    return [q for q in found if q.lane == lane]


async def test_a_redelivered_batch_is_queued_once(store: DeliveryStore, pool: asyncpg.Pool) -> None:
    lane = unique_name("d") + ".example"
    a, b = unique_name("A"), unique_name("B")
    assert await store.intake([(batch(lane, a, b), lane)]) == (2, 2)
    assert await store.intake([(batch(lane, a, b), lane)]) == (2, 0)
    assert [r["attempt"] for r in await queued(pool, a, b)] == [1, 1]


async def test_a_finished_recipient_leaves_the_queue_and_is_never_queued_again(
    store: DeliveryStore, pool: asyncpg.Pool
) -> None:
    lane = unique_name("d") + ".example"
    env_id = unique_name("E")
    await store.intake([(batch(lane, env_id), lane)])
    [item] = await claim_all(store, "w1", lane)
    await store.finish([Finished(item, DELIVERED, None)], [])
    assert await queued(pool, env_id) == []
    assert await store.intake([(batch(lane, env_id), lane)]) == (1, 0)  # bus copy: ignored
    assert await queued(pool, env_id) == []
    result = await store.result(env_id)
    assert result is not None
    assert result.outcome is Outcome.DELIVERED


async def test_a_terminal_result_remembers_whose_message_it_was(store: DeliveryStore) -> None:
    lane = unique_name("d") + ".example"
    env_id = unique_name("E")
    sent = batch(lane, env_id)
    await store.intake([(sent, lane)])
    assert await store.sent(env_id) is None  # queued: no result yet
    [item] = await claim_all(store, "w1", lane)
    await store.finish([Finished(item, DELIVERED, None)], [])
    found = await store.sent(env_id)
    assert found is not None
    assert (found.outcome, found.attempt, found.tenant_id, found.rcpt, found.msg_id) == (
        Outcome.DELIVERED, 1, "t", f"{env_id}@{lane}", f"<{env_id}@x>"
    )  # fmt: skip
    assert (found.sender, found.recv_time) == (sent.sender, sent.recv_time)
    assert await store.sent(unique_name("E")) is None


async def test_a_repeated_report_queues_no_second_event(
    store: DeliveryStore, pool: asyncpg.Pool
) -> None:
    env_id = unique_name("E")
    marker = unique_name("report").encode()
    outgoing = [Outgoing("postwire.events", "delivery.report", marker)]
    assert await store.report(env_id, "bounce", "dsn", outgoing) is True
    assert await store.report(env_id, "bounce", "exim", outgoing) is False
    assert await store.report(env_id, "complaint", "arf", outgoing) is True  # another kind
    assert await pool.fetchval("SELECT count(*) FROM delivery.outbox WHERE body = $1", marker) == 2


async def test_a_stale_duplicate_result_changes_nothing(
    store: DeliveryStore, pool: asyncpg.Pool
) -> None:
    lane = unique_name("d") + ".example"
    env_id = unique_name("E")
    await store.intake([(batch(lane, env_id), lane)])
    [item] = await claim_all(store, "w1", lane)
    await store.finish([Finished(item, DELIVERED, None)], [])
    # Another worker's late result for the same attempt: the first terminal result stays.
    late = hard(DeliveryStatus.FAILED, "late")
    await store.finish([Finished(item, late, None)], [])
    result = await store.result(env_id)
    assert result is not None
    assert result.outcome is Outcome.DELIVERED
    attempts = await pool.fetchval(
        "SELECT count(*) FROM delivery.attempts WHERE env_id = $1", env_id
    )
    assert attempts == 1


async def test_a_soft_result_makes_the_recipient_due_later_at_the_next_attempt(
    store: DeliveryStore, pool: asyncpg.Pool
) -> None:
    lane = unique_name("d") + ".example"
    env_id = unique_name("E")
    await store.intake([(batch(lane, env_id), lane)])
    [item] = await claim_all(store, "w1", lane)
    await store.finish([Finished(item, soft("451 later"), 60.0)], [])
    [row] = await queued(pool, env_id)
    assert (row["attempt"], row["later"], row["lease_owner"]) == (2, True, None)
    assert await claim_all(store, "w2", lane) == []  # not due yet
    assert await store.result(env_id) is None


async def test_results_and_their_events_are_committed_together(
    store: DeliveryStore, pool: asyncpg.Pool
) -> None:
    lane = unique_name("d") + ".example"
    env_id = unique_name("E")
    await store.intake([(batch(lane, env_id), lane)])
    [item] = await claim_all(store, "w1", lane)
    marker = unique_name("event").encode()
    await store.finish(
        [Finished(item, DELIVERED, None)], [Outgoing("postwire.events", "k", marker)]
    )
    assert await pool.fetchval("SELECT count(*) FROM delivery.outbox WHERE body = $1", marker) == 1


async def test_leases_keep_others_out_until_released_or_expired(
    store: DeliveryStore, pool: asyncpg.Pool
) -> None:
    lane = unique_name("d") + ".example"
    a, b = unique_name("A"), unique_name("B")
    await store.intake([(batch(lane, a, b), lane)])
    first = await claim_all(store, "w1", lane)
    assert {q.env_id for q in first} == {a, b}
    assert await claim_all(store, "w2", lane) == []  # leased by w1
    await store.release("w1", [a])
    assert [q.env_id for q in await claim_all(store, "w2", lane)] == [a]  # free at once
    await pool.execute(
        "UPDATE delivery.queue SET lease_until = now() - interval '1 second' WHERE env_id = $1",
        b,
    )
    assert [q.env_id for q in await claim_all(store, "w3", lane)] == [b]  # lease ran out
    await store.renew("w3", [b], 30.0)
    assert await claim_all(store, "w4", lane) == []


async def test_claims_leave_out_lanes_that_are_full(store: DeliveryStore) -> None:
    busy, free = unique_name("busy") + ".example", unique_name("free") + ".example"
    await store.intake(
        [(batch(busy, unique_name("A")), busy), (batch(free, unique_name("B")), free)]
    )
    found = await store.claim("w1", 1000, [busy], 30.0)
    lanes = {q.lane for q in found}
    assert free in lanes
    assert busy not in lanes


async def test_a_deleted_domains_keys_go_once_no_queued_mail_needs_them(
    store: DeliveryStore, pool: asyncpg.Pool
) -> None:
    tenant, domain = unique_name("t"), unique_name("shop") + ".example"
    lane = unique_name("d") + ".example"
    old, new = (
        DkimKey(domain=domain, selector="pw1", private_key="k1"),
        DkimKey(domain=domain, selector="pw2", private_key="k2"),
    )

    def signed(env_id: str, key: DkimKey) -> RecipientBatch:
        made = batch(lane, env_id)
        return made.model_copy(
            update={"tenant_id": tenant, "sender": f"news@{domain}", "dkim": [key]}
        )

    async def selectors() -> list[str]:
        rows = await pool.fetch(
            "SELECT selector FROM delivery.signing_keys WHERE tenant_id = $1 AND domain = $2 "
            "ORDER BY selector",
            tenant,
            domain,
        )
        return [r["selector"] for r in rows]

    waiting = unique_name("E")
    await store.intake([(signed(waiting, old), lane)])
    assert await store.remove_domain(tenant, domain) == 0  # queued mail still signs with it
    assert await selectors() == ["pw1"]
    # The domain is added again: its new key is not the deleted domain's.
    await store.intake([(signed(unique_name("E"), new), lane)])
    [item] = [q for q in await claim_all(store, "w1", lane) if q.env_id == waiting]
    await store.finish([Finished(item, DELIVERED, None)], [])
    assert await store.sweep_removed_domains() == 1
    assert await selectors() == ["pw2"]
