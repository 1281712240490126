"""Where account queues live in RabbitMQ: their exchange, queue names and arguments, and
the headers each message carries; declared here and nowhere else.

::

    postwire.acct (direct, key <tenant>.<queue>)
        └─▶ postwire.acct.<tenant>.<queue>   quorum; x-message-ttl = retention ──expired──▶
              │        ▲                                          postwire.acct-expired
              │        │ dead-lettered back after
              ▼        │ the visibility timeout
        postwire.acct-invisible.<tenant>.<queue>   quorum; x-message-ttl = visibility

The account queue (``amqp_name``) is also the one an account consumes over AMQP with
credentials of its own (``broker_users``). Quorum queues support queue TTL and
dead-lettering since RabbitMQ 3.10; dead-lettering is at-most-once there, so a dropped
count can be one short after a broker failure.
"""

from __future__ import annotations

import time
from datetime import timedelta
from typing import Any

import aio_pika
from aio_pika.abc import AbstractChannel, AbstractIncomingMessage, AbstractQueue

__all__ = [
    "DEQUEUES",
    "ENQUEUED",
    "EXCHANGE",
    "EXPIRED",
    "QUEUE",
    "RECEIPT",
    "TENANT",
    "amqp_name",
    "declare",
    "declare_shared",
    "enqueued_ms",
    "invisible_name",
    "persistent_message",
    "remove",
    "routing_key",
]

EXCHANGE = "postwire.acct"
EXPIRED = "postwire.acct-expired"
TENANT = "x-postwire-account"
QUEUE = "x-postwire-queue"
ENQUEUED = "x-postwire-enqueued-ms"
DEQUEUES = "x-postwire-dequeue-count"
# The receipt a copy in the invisible queue was made for: a copy whose receipt is no
# longer its message's current one was superseded (``queue_visibility``).
RECEIPT = "x-postwire-receipt"


def amqp_name(tenant_id: str, queue: str) -> str:
    """The RabbitMQ queue an account consumes over AMQP."""
    return f"{EXCHANGE}.{tenant_id}.{queue}"


def invisible_name(tenant_id: str, queue: str) -> str:
    return f"{EXCHANGE}-invisible.{tenant_id}.{queue}"


def routing_key(tenant_id: str, queue: str) -> str:
    return f"{tenant_id}.{queue}"


def persistent_message(
    body: bytes,
    content_type: str,
    message_id: str,
    headers: dict[str, Any],
    expiration: timedelta | None = None,
) -> Any:
    """A persistent message, as enqueued and as copied into the invisible queue (where
    ``expiration`` shortens the queue's TTL for this copy)."""
    return aio_pika.Message(
        body,
        content_type=content_type,
        message_id=message_id,
        headers=headers,
        delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
        expiration=expiration,
    )


def enqueued_ms(message: AbstractIncomingMessage) -> int:
    """When the message was first enqueued (ms since the epoch); now if it does not say."""
    value = (message.headers or {}).get(ENQUEUED)
    return int(value) if isinstance(value, int | float | str) else int(time.time() * 1000)


async def declare_shared(channel: AbstractChannel) -> AbstractQueue:
    """The exchange every account queue is bound to, and the queue of expired messages."""
    await channel.declare_exchange(EXCHANGE, aio_pika.ExchangeType.DIRECT, durable=True)
    return await channel.declare_queue(EXPIRED, durable=True, arguments={"x-queue-type": "quorum"})


async def declare(
    channel: AbstractChannel, tenant_id: str, queue: str, visibility: int, retention: int
) -> None:
    """One account queue's pair: the queue itself, and where received messages wait."""
    main = await channel.declare_queue(
        amqp_name(tenant_id, queue),
        durable=True,
        arguments={
            "x-queue-type": "quorum",
            "x-message-ttl": retention * 1000,
            "x-dead-letter-exchange": "",
            "x-dead-letter-routing-key": EXPIRED,
        },
    )
    await main.bind(EXCHANGE, routing_key=routing_key(tenant_id, queue))
    await channel.declare_queue(
        invisible_name(tenant_id, queue),
        durable=True,
        arguments={
            "x-queue-type": "quorum",
            "x-message-ttl": visibility * 1000,
            "x-dead-letter-exchange": EXCHANGE,
            "x-dead-letter-routing-key": routing_key(tenant_id, queue),
        },
    )


async def remove(channel: AbstractChannel, tenant_id: str, queue: str) -> None:
    await channel.queue_delete(amqp_name(tenant_id, queue))
    await channel.queue_delete(invisible_name(tenant_id, queue))
