"""The consumer failure policy on an in-memory broker: an infrastructure failure is
handled again in place (never requeued, so it never counts against the delivery limit)."""

from __future__ import annotations

import asyncio

import pytest
from faststream.rabbit import RabbitQueue, TestRabbitBroker

from postwire_common.broker import consume
from postwire_common.broker.factory import make_broker
from postwire_common.config import Settings


@pytest.fixture(autouse=True)
def fast_backoff(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(consume, "backoff_seconds", lambda count: 0.0)


async def test_an_infrastructure_failure_is_retried_in_place_until_it_passes() -> None:
    broker = make_broker(Settings(), service="test")
    calls: list[str] = []

    @broker.subscriber(RabbitQueue("inplace"))
    async def handle(body: str) -> None:
        calls.append(body)
        if len(calls) < 3:
            raise ConnectionRefusedError("database down")

    async with TestRabbitBroker(broker) as test:
        await test.publish("m1", queue="inplace")
        await asyncio.sleep(0)
    assert calls == ["m1", "m1", "m1"]


async def test_a_bug_is_not_retried_in_place() -> None:
    broker = make_broker(Settings(), service="test")
    calls: list[str] = []

    @broker.subscriber(RabbitQueue("bug"))
    async def handle(body: str) -> None:
        calls.append(body)
        raise ValueError("a bug")

    async with TestRabbitBroker(broker) as test:
        await test.publish("m1", queue="bug")
    assert calls == ["m1"]  # requeued (counted) instead: the broker redelivers it later
