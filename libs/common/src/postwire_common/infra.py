"""Which failures are the infrastructure's (PostgreSQL, RabbitMQ, the network), not ours.

Such a failure says nothing about the message being handled: the handler waits and tries
again, and the attempt is not counted against the message's delivery limit
(``broker/consume.py``), nor recorded as a delivery attempt.
"""

from __future__ import annotations

import asyncpg
from aiormq.exceptions import AMQPError

_INFRASTRUCTURE: tuple[type[BaseException], ...] = (
    OSError,  # includes ConnectionError: refused, reset, unreachable
    TimeoutError,  # a pool acquire, a statement or a publisher confirm took too long
    asyncpg.PostgresConnectionError,  # SQLSTATE class 08
    asyncpg.InterfaceError,  # connection closed under us, pool closing
    asyncpg.exceptions.OperatorInterventionError,  # class 57: shutdown, cannot connect now
    asyncpg.exceptions.InsufficientResourcesError,  # class 53: disk full, too many conns
    AMQPError,
)


def is_infrastructure(exc: BaseException) -> bool:
    return isinstance(exc, _INFRASTRUCTURE)
