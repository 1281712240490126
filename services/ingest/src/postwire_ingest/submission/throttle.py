"""Slowing down AUTH guessing, per source address and per API user.

Each failed AUTH within the window makes the answer to the next wrong guess from that
address, or for that user, come later (0.5 s doubling to 8 s); right credentials are
answered at once, so users behind one address with a mistyped colleague do not wait. An
address with ``LOCK_AFTER`` failures in the window is refused outright until they age
out: that bounds a guesser that opens many sessions in parallel. A user is never locked:
that would let anyone lock a real user out by guessing its name; it is only slowed down.
A success clears nothing: a guesser that owns one account must not reset its budget.

Failures are counted in PostgreSQL (``ingest.auth_failures``), so every ingest process
and replica sees the same counts: one query per AUTH, one insert per failure.
"""

from __future__ import annotations

from dataclasses import dataclass

import asyncpg

WINDOW_SECONDS = 600
LOCK_AFTER = 20  # failures from one address within the window
FIRST_DELAY = 0.5
MAX_DELAY = 8.0


def delay_after(failures: int) -> float:
    """Seconds to wait before answering a wrong guess that ``failures`` came before."""
    if failures <= 0:
        return 0.0
    return float(min(MAX_DELAY, FIRST_DELAY * 2 ** (failures - 1)))


@dataclass(frozen=True, slots=True)
class Failures:
    by_address: int
    by_user: int

    @property
    def locked(self) -> bool:
        return self.by_address >= LOCK_AFTER

    @property
    def delay(self) -> float:
        return delay_after(max(self.by_address, self.by_user))


class AuthFailures:
    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool

    async def recent(self, ip: str, user: str) -> Failures:
        row = await self._pool.fetchrow(
            "SELECT count(*) FILTER (WHERE key = $1) AS ip, count(*) FILTER (WHERE key = $2) "
            "AS usr FROM ingest.auth_failures WHERE key IN ($1, $2) "
            "AND at > now() - make_interval(secs => $3)",
            f"ip:{ip}",
            f"user:{user}",
            WINDOW_SECONDS,
        )
        return Failures(row["ip"], row["usr"])

    async def record(self, ip: str, user: str) -> None:
        async with self._pool.acquire() as conn, conn.transaction():
            await conn.execute(
                "INSERT INTO ingest.auth_failures (key) VALUES ($1), ($2)",
                f"ip:{ip}",
                f"user:{user}",
            )
            await conn.execute(
                "DELETE FROM ingest.auth_failures WHERE at < now() - make_interval(secs => $1)",
                WINDOW_SECONDS,
            )
