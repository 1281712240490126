"""The outbox relay against the real PostgreSQL, publishing to an in-memory broker: rounds
are bounded in bytes as well as rows, rows are deleted only once published, and batches
published together arrive as one message."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator

import asyncpg
import pytest
from faststream.rabbit import RabbitExchange, RabbitQueue, TestRabbitBroker

from postwire_common import db
from postwire_common.broker.factory import make_broker
from postwire_common.broker.outbox import OutboxRelay
from postwire_common.config import Settings
from postwire_testkit.infra import temp_database

pytestmark = pytest.mark.integration
MB = 1024 * 1024


@pytest.fixture
async def pool() -> AsyncIterator[asyncpg.Pool]:
    async with temp_database() as url:
        made = await db.create_pool(url)
        await made.execute(
            "CREATE TABLE outbox (id bigserial PRIMARY KEY, exchange text, routing_key text, "
            "message_id text, body bytea, created_at timestamptz DEFAULT now())"
        )
        yield made
        await made.close()


def json_string(size: int) -> bytes:
    return b'"' + b"a" * (size - 2) + b'"'


async def add(pool: asyncpg.Pool, body: bytes, count: int = 1) -> None:
    await pool.executemany(
        "INSERT INTO outbox (exchange, routing_key, body) VALUES ('x', 'k', $1)",
        [(body,)] * count,
    )


async def test_a_round_is_bounded_in_bytes_but_takes_at_least_one_row(pool: asyncpg.Pool) -> None:
    broker = make_broker(Settings(), service="test")
    got: list[int] = []

    @broker.subscriber(RabbitQueue("q", routing_key="k"), RabbitExchange("x"))
    async def receive(body: str) -> None:
        got.append(len(body) + 2)

    await add(pool, json_string(3 * MB), count=3)
    await add(pool, json_string(9 * MB))
    relay = OutboxRelay(pool, broker, "outbox", max_bytes=8 * MB)
    async with TestRabbitBroker(broker):
        assert await relay.relay_once() == (2, 0)  # 6 MB; a third would pass 8 MB
        assert await relay.relay_once() == (1, 0)
        assert await relay.relay_once() == (1, 0)  # alone over the budget: still goes
        assert await relay.relay_once() == (0, 0)
    assert await pool.fetchval("SELECT count(*) FROM outbox") == 0
    assert sorted(got) == [3 * MB, 3 * MB, 3 * MB, 9 * MB]


async def test_batches_committed_apart_are_published_as_one_message(pool: asyncpg.Pool) -> None:
    broker = make_broker(Settings(), service="test")
    got: list[dict[str, list[int]]] = []

    @broker.subscriber(RabbitQueue("q", routing_key="k"), RabbitExchange("x"))
    async def receive(body: dict[str, list[int]]) -> None:
        got.append(body)

    for n in range(5):
        await add(pool, json.dumps({"events": [n]}, separators=(",", ":")).encode())
    relay = OutboxRelay(pool, broker, "outbox")
    async with TestRabbitBroker(broker):
        assert await relay.relay_once() == (5, 0)
    assert got == [{"events": [0, 1, 2, 3, 4]}]
