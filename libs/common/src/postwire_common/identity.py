"""Who is calling: the one concern every service shares (ARCHITECTURE.md).

Ingest owns the ``ingest.accounts`` and ``ingest.api_users`` tables; every service checks
HTTP Basic ``api_user:api_key`` credentials against them through :class:`Identity` and
nothing else. Keys are random (24 bytes), so a SHA-256 digest is a sufficient hash; they
are compared in constant time. Successful checks are cached for a few seconds, so a
deleted user or regenerated key stops working within ``CACHE_SECONDS``.
"""

from __future__ import annotations

import hashlib
import hmac
import time
from dataclasses import dataclass

import asyncpg

from postwire_common.errors import AuthorizationFailed

CACHE_SECONDS = 5.0
_CACHE_LIMIT = 10_000


@dataclass(frozen=True, slots=True)
class Principal:
    """An authenticated API user and the account (tenant) it belongs to."""

    tenant_id: str
    tenant_name: str
    api_user: str
    user_type: str  # "trigger" or "batch"


def hash_key(api_key: str) -> bytes:
    return hashlib.sha256(api_key.encode()).digest()


class Identity:
    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool
        self._cache: dict[tuple[str, bytes], tuple[float, Principal]] = {}

    async def authenticate(self, api_user: str, api_key: str) -> Principal:
        digest = hash_key(api_key)
        now = time.monotonic()
        cached = self._cache.get((api_user, digest))
        if cached and cached[0] > now:
            return cached[1]
        row = await self._pool.fetchrow(
            "SELECT u.account_id, a.name AS account_name, u.type, u.key_hash "
            "FROM ingest.api_users u JOIN ingest.accounts a ON a.id = u.account_id "
            "WHERE u.name = $1",
            api_user,
        )
        # Compare against a dummy digest when the user is unknown, so timing does not
        # tell which API user names exist.
        stored = bytes(row["key_hash"]) if row else b"\0" * 32
        if not hmac.compare_digest(stored, digest) or row is None:
            raise AuthorizationFailed("wrong api_user or api_key")
        principal = Principal(row["account_id"], row["account_name"], api_user, row["type"])
        if len(self._cache) >= _CACHE_LIMIT:
            self._cache.clear()
        self._cache[(api_user, digest)] = (now + CACHE_SECONDS, principal)
        return principal

    def forget(self, api_user: str) -> None:
        for key in [k for k in self._cache if k[0] == api_user]:
            del self._cache[key]
