"""TLS policies on the real PostgreSQL: a PUT adds or replaces, the limit counts only new
rules, another account's rules are invisible, and the process that changes a rule uses it
at once."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import asyncpg
import pytest

from postwire_common import db
from postwire_common.errors import NotAvailable, NotFound
from postwire_common.schemas import TlsMode
from postwire_ingest.tls_policies import TlsPolicies, mode_for
from postwire_ingest.tls_policy_store import TlsPolicyStore
from postwire_testkit.infra import migrated_database, unique_name

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
async def pool() -> AsyncIterator[asyncpg.Pool]:
    async with migrated_database() as url:
        made: asyncpg.Pool = await db.create_pool(url)
        yield made
        await made.close()


async def account(pool: asyncpg.Pool) -> str:
    account_id = unique_name("acct")
    await pool.execute("INSERT INTO ingest.accounts (id, name) VALUES ($1, $1)", account_id)
    return account_id


async def test_put_adds_or_replaces_and_delete_removes(pool: asyncpg.Pool) -> None:
    store, me, other = TlsPolicyStore(pool), await account(pool), await account(pool)
    first = await store.put_policy(me, "example.org", TlsMode.REQUIRE, 10)
    assert (first["domain"], first["mode"]) == ("example.org", "require")
    replaced = await store.put_policy(me, "example.org", TlsMode.NONE, 10)
    assert replaced["mode"] == "none"
    assert replaced["updated_at"] >= first["updated_at"]
    await store.put_policy(me, "*", TlsMode.REQUIRE, 10)
    assert [(r["domain"], r["mode"]) for r in await store.list_policies(me)] == [
        ("*", "require"),
        ("example.org", "none"),
    ]
    assert dict(await store.modes(me)) == {"*": TlsMode.REQUIRE, "example.org": TlsMode.NONE}

    # Another account sees none of it, and cannot change or delete it.
    assert await store.list_policies(other) == []
    assert dict(await store.modes(other)) == {}
    with pytest.raises(NotFound):
        await store.get_policy(other, "example.org")
    with pytest.raises(NotFound):
        await store.delete_policy(other, "example.org")
    assert (await store.get_policy(me, "example.org"))["mode"] == "none"

    await store.delete_policy(me, "example.org")
    with pytest.raises(NotFound):
        await store.get_policy(me, "example.org")
    with pytest.raises(NotFound):
        await store.delete_policy(me, "example.org")


async def test_the_limit_counts_new_rules_only_even_when_puts_race(pool: asyncpg.Pool) -> None:
    store, me = TlsPolicyStore(pool), await account(pool)
    outcomes = await asyncio.gather(
        *(store.put_policy(me, f"d{i}.example", TlsMode.REQUIRE, 3) for i in range(6)),
        return_exceptions=True,
    )
    refused = [o for o in outcomes if isinstance(o, NotAvailable)]
    assert len(refused) == 3, outcomes
    assert "at most 3 TLS policies" in refused[0].description
    assert len(await store.list_policies(me)) == 3
    kept = (await store.list_policies(me))[0]["domain"]
    # At the limit a rule can still be replaced.
    assert (await store.put_policy(me, kept, TlsMode.NONE, 3))["mode"] == "none"


async def test_a_change_is_used_at_once_by_the_process_that_made_it(pool: asyncpg.Pool) -> None:
    policies, me = TlsPolicies(TlsPolicyStore(pool)), await account(pool)
    assert mode_for(await policies.rules(me), "example.org") is TlsMode.OPPORTUNISTIC
    await policies.store.put_policy(me, "example.org", TlsMode.REQUIRE, 10)
    # Remembered until forgotten (or CACHE_SECONDS pass) ...
    assert mode_for(await policies.rules(me), "example.org") is TlsMode.OPPORTUNISTIC
    policies.forget(me)  # ... which the routes do after every change.
    assert mode_for(await policies.rules(me), "example.org") is TlsMode.REQUIRE


async def test_rules_go_with_their_account(pool: asyncpg.Pool) -> None:
    store, me = TlsPolicyStore(pool), await account(pool)
    await store.put_policy(me, "example.org", TlsMode.REQUIRE, 10)
    await pool.execute("DELETE FROM ingest.accounts WHERE id = $1", me)
    assert await store.list_policies(me) == []
    with pytest.raises(asyncpg.CheckViolationError):
        await pool.execute(
            "INSERT INTO ingest.tls_policies (account_id, domain, mode) "
            "VALUES ($1, 'x.example', 'sometimes')",
            await account(pool),
        )
