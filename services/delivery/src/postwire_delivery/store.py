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
class AlreadyFinished(Claim):
    recorded: Recorded


@dataclass(frozen=True, slots=True)
class Busy(Claim):
    lease_until: datetime


def _recorded(row: asyncpg.Record) -> Recorded:
    status = DeliveryStatus(row["status"]) if row["status"] is not None else None
    result = DeliveryResult(
        Outcome(row["outcome"]), status, row["code"], row["message"], row["host"]
    )
    return Recorded(row["attempt"], result, row["finished_at"])


class DeliveryStore:
    def __init__(self, pool: asyncpg.Pool) -> None:
        self.pool = pool

    async def terminal(self, env_id: str) -> Recorded | None:
        row = await self.pool.fetchrow("SELECT * FROM delivery.results WHERE env_id = $1", env_id)
        return _recorded(row) if row else None

    async def claim(self, env_id: str, attempt: int, lease_seconds: float) -> Claim:
        """Take attempt ``attempt`` of ``env_id``, unless it is finished or leased."""
        row = await self.pool.fetchrow(
            "INSERT INTO delivery.attempts (env_id, attempt, lease_until) "
            "VALUES ($1, $2, now() + make_interval(secs => $3)) "
            "ON CONFLICT (env_id, attempt) DO UPDATE "
            "SET lease_until = EXCLUDED.lease_until, started_at = now() "
            "WHERE delivery.attempts.finished_at IS NULL "
            "AND delivery.attempts.lease_until < now() "
            "RETURNING true AS claimed",
            env_id,
            attempt,
            lease_seconds,
        )
        if row is not None:
            return Claimed()
        existing = await self.pool.fetchrow(
            "SELECT * FROM delivery.attempts WHERE env_id = $1 AND attempt = $2", env_id, attempt
        )
        assert existing is not None
        if existing["finished_at"] is not None:
            return AlreadyFinished(_recorded(existing))
        return Busy(existing["lease_until"])

    async def finish(self, env_id: str, attempt: int, result: DeliveryResult) -> Recorded:
        """Record the attempt's result, and the message's if it is terminal."""
        async with self.pool.acquire() as conn, conn.transaction():
            finished_at = await conn.fetchval(
                "UPDATE delivery.attempts SET finished_at = now(), outcome = $3, status = $4, "
                "code = $5, message = $6, host = $7 WHERE env_id = $1 AND attempt = $2 "
                "RETURNING finished_at",
                env_id,
                attempt,
                result.outcome.value,
                result.status,
                result.code,
                result.message,
                result.host,
            )
            if result.outcome is not Outcome.SOFT:
                await conn.execute(
                    "INSERT INTO delivery.results (env_id, attempt, outcome, status, code, "
                    "message, host, finished_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8) "
                    "ON CONFLICT (env_id) DO NOTHING",
                    env_id,
                    attempt,
                    result.outcome.value,
                    result.status,
                    result.code,
                    result.message,
                    result.host,
                    finished_at,
                )
        return Recorded(attempt, result, finished_at)
