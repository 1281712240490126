"""Recipient lists (Aliyun DirectMail's receivers): a named list per account, and its
members, each an address with the variables a template is rendered with for it."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import asyncpg

from postwire_common.errors import AlreadyExists, NotFound, QuotaExceeded
from postwire_common.ids import new_id

MAX_RECEIVERS_PER_ACCOUNT = 1000  # ours: Aliyun does not say


@dataclass(frozen=True, slots=True)
class Member:
    address: str
    variables: Mapping[str, str]


class ReceiverStore:
    def __init__(self, pool: asyncpg.Pool) -> None:
        self.pool = pool

    async def create(self, account_id: str, name: str, alias: str, description: str) -> str:
        receiver_id = new_id()
        async with self.pool.acquire() as conn, conn.transaction():
            # Serialises creations per account, so the count below holds.
            await conn.execute("SELECT 1 FROM ingest.accounts WHERE id = $1 FOR UPDATE", account_id)
            count = await conn.fetchval(
                "SELECT count(*) FROM ingest.receivers WHERE account_id = $1", account_id
            )
            if count >= MAX_RECEIVERS_PER_ACCOUNT:
                raise QuotaExceeded(f"at most {MAX_RECEIVERS_PER_ACCOUNT} recipient lists")
            try:
                await conn.execute(
                    "INSERT INTO ingest.receivers (id, account_id, name, alias, description) "
                    "VALUES ($1, $2, $3, $4, $5)",
                    receiver_id, account_id, name, alias, description,
                )  # fmt: skip
            except asyncpg.UniqueViolationError:
                raise AlreadyExists(f"a recipient list {name!r} exists") from None
        return receiver_id

    async def find(self, account_id: str, *, name: str | None = None, id: str | None = None) -> str:
        """The id of the account's list with that name or id."""
        found = await self.pool.fetchval(
            "SELECT id FROM ingest.receivers WHERE account_id = $1 AND (name = $2 OR id = $3)",
            account_id, name, id,
        )  # fmt: skip
        if found is None:
            raise NotFound(f"no recipient list {name or id!r}")
        return str(found)

    async def listing(
        self, account_id: str, keyword: str | None, limit: int, after: str | None
    ) -> list[dict[str, Any]]:
        """Lists by name (containing ``keyword``), after the name ``after``, with their
        member counts."""
        rows = await self.pool.fetch(
            "SELECT r.id, r.name, r.alias, r.description, r.created_at, "
            "(SELECT count(*) FROM ingest.receiver_members m WHERE m.receiver_id = r.id) AS count "
            "FROM ingest.receivers r WHERE r.account_id = $1 "
            "AND ($2::text IS NULL OR strpos(lower(r.name), lower($2)) > 0) "
            "AND ($3::text IS NULL OR r.name > $3) ORDER BY r.name LIMIT $4",
            account_id, keyword, after, limit,
        )  # fmt: skip
        return [dict(r) for r in rows]

    async def delete(self, account_id: str, receiver_id: str) -> None:
        done = await self.pool.execute(
            "DELETE FROM ingest.receivers WHERE account_id = $1 AND id = $2",
            account_id, receiver_id,
        )  # fmt: skip
        if done == "DELETE 0":
            raise NotFound(f"no recipient list {receiver_id!r}")

    async def add(self, account_id: str, receiver_id: str, members: Sequence[Member]) -> list[str]:
        """Adds the members whose address the list does not have yet; the addresses it
        already had."""
        await self.find(account_id, id=receiver_id)
        rows = await self.pool.fetch(
            "INSERT INTO ingest.receiver_members (receiver_id, address_key, address, variables) "
            "SELECT $1, lower(a), a, v::jsonb FROM unnest($2::text[], $3::text[]) AS t(a, v) "
            "ON CONFLICT DO NOTHING RETURNING address_key",
            receiver_id,
            [m.address for m in members],
            [json.dumps(dict(m.variables)) for m in members],
        )
        added = {r["address_key"] for r in rows}
        return [m.address for m in members if m.address.lower() not in added]

    async def members(self, receiver_id: str, after: str, limit: int) -> list[Member]:
        """The list's members in address order, after ``after`` (lower-cased)."""
        rows = await self.pool.fetch(
            "SELECT address, variables FROM ingest.receiver_members "
            "WHERE receiver_id = $1 AND address_key > $2 ORDER BY address_key LIMIT $3",
            receiver_id, after, limit,
        )  # fmt: skip
        return [Member(r["address"], r["variables"]) for r in rows]
