"""Confirmed, mandatory, persistent publishing, one at a time or many pipelined."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache

from faststream.rabbit import RabbitBroker, RabbitExchange
from pydantic import BaseModel


@dataclass(frozen=True, slots=True)
class Outgoing:
    """A message to publish: already-encoded JSON ``body`` or a model to encode."""

    exchange: str
    routing_key: str
    body: bytes | BaseModel
    message_id: str | None = None


# A confirm that takes longer (broker blocked by a memory or disk alarm) fails the
# publish, so callers back off instead of holding rows, connections or messages forever.
CONFIRM_TIMEOUT = 30.0


@lru_cache(maxsize=256)
def _exchange(name: str) -> RabbitExchange:
    return RabbitExchange(name, declare=False)


async def publish(broker: RabbitBroker, item: Outgoing) -> None:
    """Publish and wait for the broker's confirm; raise if it is nacked or returned."""
    body = item.body.model_dump_json().encode() if isinstance(item.body, BaseModel) else item.body
    await broker.publish(
        body,
        exchange=_exchange(item.exchange) if item.exchange else None,
        routing_key=item.routing_key,
        mandatory=True,
        persist=True,
        message_id=item.message_id,
        content_type="application/json",
        timeout=CONFIRM_TIMEOUT,
    )


async def publish_all(
    broker: RabbitBroker, items: Sequence[Outgoing]
) -> list[BaseException | None]:
    """Publish ``items`` with their confirms in flight together; one result per item."""
    results = await asyncio.gather(
        *(publish(broker, item) for item in items), return_exceptions=True
    )
    return [r if isinstance(r, BaseException) else None for r in results]


async def publish_all_or_raise(broker: RabbitBroker, items: Sequence[Outgoing]) -> None:
    for error in await publish_all(broker, items):
        if error is not None:
            raise error
