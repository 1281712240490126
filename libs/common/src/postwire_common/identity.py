"""Who is calling: the one concern every service shares (ARCHITECTURE.md).

Ingest owns the ``ingest.accounts`` and ``ingest.api_users`` tables; every service checks
HTTP Basic ``api_user:api_key`` credentials against them through :class:`Identity` and
nothing else. ``api_user`` is a user's login, ``<account>.<name>`` (names are unique only
within their account). Keys are random (24 bytes), so a SHA-256 digest is a sufficient hash; they
are compared in constant time. Successful checks are cached for a few seconds, so a
deleted user or regenerated key stops working within ``CACHE_SECONDS``.

The vendors' signed requests (Aliyun ACS3 and RPC, MNS, Tencent TC3) prove the key with
an HMAC instead of sending it: :meth:`Identity.signing_secret` reads the key back from
its encrypted copy, and the vendor module checks the signature with it.
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass

import asyncpg

from postwire_common.crypto import Keyring
from postwire_common.errors import AuthorizationFailed
from postwire_common.ttl_cache import TtlCache

CACHE_SECONDS = 5.0


@dataclass(frozen=True, slots=True)
class Principal:
    """An authenticated API user and the account (tenant) it belongs to."""

    tenant_id: str
    tenant_name: str
    api_user: str  # the login, "<account>.<name>"
    user_type: str  # "trigger" or "batch"


def hash_key(api_key: str) -> bytes:
    return hashlib.sha256(api_key.encode()).digest()


class Identity:
    def __init__(self, pool: asyncpg.Pool, keyring: Keyring | None = None) -> None:
        self._pool = pool
        self._keyring = keyring
        self._cache: TtlCache[tuple[str, bytes], Principal] = TtlCache(CACHE_SECONDS)
        self._secrets: TtlCache[str, tuple[Principal, str]] = TtlCache(CACHE_SECONDS)

    async def authenticate(self, api_user: str, api_key: str) -> Principal:
        digest = hash_key(api_key)
        cached = self._cache.get((api_user, digest))
        if cached is not None:
            return cached
        row = await self._pool.fetchrow(
            "SELECT u.account_id, a.name AS account_name, u.type, u.key_hash "
            "FROM ingest.api_users u JOIN ingest.accounts a ON a.id = u.account_id "
            "WHERE u.login = $1",
            api_user,
        )
        # Compare against a dummy digest when the user is unknown, so timing does not
        # tell which API user names exist.
        stored = bytes(row["key_hash"]) if row else b"\0" * 32
        if not hmac.compare_digest(stored, digest) or row is None:
            raise AuthorizationFailed("wrong api_user or api_key")
        principal = Principal(row["account_id"], row["account_name"], api_user, row["type"])
        self._cache.put((api_user, digest), principal)
        return principal

    async def signing_secret(self, api_user: str) -> tuple[Principal, str]:
        """The API user and its key, for checking a request signed with that key (the
        caller compares signatures in constant time)."""
        cached = self._secrets.get(api_user)
        if cached is not None:
            return cached
        if self._keyring is None:
            raise RuntimeError("this Identity was made without a keyring")
        row = await self._pool.fetchrow(
            "SELECT u.account_id, a.name AS account_name, u.type, u.key_sealed "
            "FROM ingest.api_users u JOIN ingest.accounts a ON a.id = u.account_id "
            "WHERE u.login = $1",
            api_user,
        )
        if row is None:
            raise AuthorizationFailed("wrong api_user or api_key")
        if row["key_sealed"] is None:
            raise AuthorizationFailed(
                "this API user's key predates signed requests: regenerate it "
                "(POST /v1/api-users/{name}/key) to sign requests with it"
            )
        principal = Principal(row["account_id"], row["account_name"], api_user, row["type"])
        found = (principal, self._keyring.decrypt(row["key_sealed"]))
        self._secrets.put(api_user, found)
        return found

    def forget(self, api_user: str) -> None:
        self._cache.forget(lambda key: key[0] == api_user)
        self._secrets.forget(lambda key: key == api_user)
