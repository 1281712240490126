"""delivery's SQL, and nowhere else. Tables live in the ``delivery`` schema."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import asyncpg

from postwire_common.schemas import DeliveryStatus
from postwire_delivery.results import DeliveryResult, Outcome


@dataclass(frozen=True, slots=True)
class Recorded:
    """A finished attempt (or a message's terminal result) as stored."""

    attempt: int
    result: DeliveryResult
    finished_at: datetime


class Claim:
    """What claiming an attempt found."""


@dataclass(frozen=True, slots=True)
class Claimed(Claim):
    pass


@dataclass(frozen=True, slots=True)
class Terminal(Claim):
    """The message already has its terminal result (so no attempt was claimed)."""

    recorded: Recorded


@dataclass(frozen=True, slots=True)
class AlreadyFinished(Claim):
    recorded: Recorded


@dataclass(frozen=True, slots=True)
class Busy(Claim):
    lease_until: datetime


# One round trip for the usual case: no terminal result yet, attempt not taken.
_CLAIM = """
WITH done AS (
    SELECT attempt, outcome, status, code, message, host, finished_at
    FROM delivery.results WHERE env_id = $1
), claimed AS (
    INSERT INTO delivery.attempts (env_id, attempt, lease_until)
    SELECT $1, $2, now() + make_interval(secs => $3) WHERE NOT EXISTS (SELECT 1 FROM done)
    ON CONFLICT (env_id, attempt) DO UPDATE
    SET lease_until = EXCLUDED.lease_until, started_at = now()
    WHERE delivery.attempts.finished_at IS NULL AND delivery.attempts.lease_until < now()
    RETURNING true AS claimed
)
SELECT (SELECT claimed FROM claimed) AS claimed, done.*
FROM (VALUES (1)) AS one LEFT JOIN done ON true
"""

# The attempt's result and, when terminal, the message's, in one statement.
_FINISH = """
WITH finished AS (
    UPDATE delivery.attempts SET finished_at = now(), outcome = $3, status = $4, code = $5,
        message = $6, host = $7
    WHERE env_id = $1 AND attempt = $2
    RETURNING finished_at
), terminal AS (
    INSERT INTO delivery.results (env_id, attempt, outcome, status, code, message, host,
        finished_at)
    SELECT $1, $2, $3, $4, $5, $6, $7, finished_at FROM finished WHERE $3 <> 'soft'
    ON CONFLICT (env_id) DO NOTHING
)
SELECT finished_at FROM finished
"""


def _values(result: DeliveryResult) -> tuple[object, ...]:
    """A result as the columns outcome, status, code, message, host."""
    return (result.outcome.value, result.status, result.code, result.message, result.host)


def _recorded(row: asyncpg.Record) -> Recorded:
    status = DeliveryStatus(row["status"]) if row["status"] is not None else None
    result = DeliveryResult(
        Outcome(row["outcome"]), status, row["code"], row["message"], row["host"]
    )
    return Recorded(row["attempt"], result, row["finished_at"])


class DeliveryStore:
    def __init__(self, pool: asyncpg.Pool) -> None:
        self.pool = pool

    async def claim(self, env_id: str, attempt: int, lease_seconds: float) -> Claim:
        """Take attempt ``attempt`` of ``env_id``, unless the message is finished, the
        attempt is finished, or another worker's lease on it is still running."""
        row = await self.pool.fetchrow(_CLAIM, env_id, attempt, lease_seconds)
        if row["outcome"] is not None:
            return Terminal(_recorded(row))
        if row["claimed"]:
            return Claimed()
        existing = await self.pool.fetchrow(
            "SELECT * FROM delivery.attempts WHERE env_id = $1 AND attempt = $2", env_id, attempt
        )
        assert existing is not None
        if existing["finished_at"] is not None:
            return AlreadyFinished(_recorded(existing))
        return Busy(existing["lease_until"])

    async def abandon(self, env_id: str, attempt: int, result: DeliveryResult) -> Recorded:
        """Make ``result`` the message's terminal result unless it has one already; return
        whichever is terminal now."""
        row = await self.pool.fetchrow(
            "WITH given AS (INSERT INTO delivery.results (env_id, attempt, outcome, status, "
            "code, message, host, finished_at) VALUES ($1, $2, $3, $4, $5, $6, $7, now()) "
            "ON CONFLICT (env_id) DO NOTHING RETURNING *) "
            "SELECT * FROM given UNION ALL "
            "SELECT * FROM delivery.results WHERE env_id = $1 AND NOT EXISTS (SELECT 1 FROM given)",
            env_id,
            attempt,
            *_values(result),
        )
        assert row is not None
        return _recorded(row)

    async def finish(self, env_id: str, attempt: int, result: DeliveryResult) -> Recorded:
        """Record the attempt's result, and the message's if it is terminal."""
        finished_at = await self.pool.fetchval(
            _FINISH,
            env_id,
            attempt,
            *_values(result),
        )
        return Recorded(attempt, result, finished_at)
