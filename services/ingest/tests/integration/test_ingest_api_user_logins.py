"""Migration 0004 on the real PostgreSQL: API users made before logins keep their
credentials (their old name is their login), and names are then unique per account."""

from __future__ import annotations

import asyncio

import asyncpg
import pytest

from postwire_common import db
from postwire_common.crypto import Keyring, generate_key
from postwire_common.errors import AuthorizationFailed
from postwire_common.identity import Identity, hash_key
from postwire_common.migrations import MigrationSet, upgrade
from postwire_ingest import accounts
from postwire_ingest.store import IngestStore
from postwire_testkit.infra import temp_database

pytestmark = pytest.mark.integration

INGEST = MigrationSet("ingest", "postwire_ingest:migrations")


async def test_users_from_before_logins_keep_their_credentials() -> None:
    async with temp_database() as url:
        await asyncio.to_thread(upgrade, url, INGEST, "0003")
        conn = await asyncpg.connect(url)
        try:
            await conn.execute("INSERT INTO ingest.accounts (id, name) VALUES ('A1', 'acme')")
            await conn.execute(
                "INSERT INTO ingest.api_users (name, account_id, type, key_hash) "
                "VALUES ('acme_trigger', 'A1', 'trigger', $1)",
                hash_key("old-key"),
            )
        finally:
            await conn.close()
        await asyncio.to_thread(upgrade, url, INGEST, "head")

        pool = await db.create_pool(url, size=2)
        try:
            principal = await Identity(pool).authenticate("acme_trigger", "old-key")
            assert (principal.tenant_name, principal.api_user) == ("acme", "acme_trigger")
            store = IngestStore(pool, Keyring([generate_key()]))
            # Another account can now have a user of the same name; its login differs.
            globex = await accounts.create_account(store, "globex")
            created = await accounts.create_api_user(
                store, globex["account_id"], "acme_trigger", "batch"
            )
            assert created["api_user"] == "globex.acme_trigger"
            identity = Identity(pool)
            assert (
                await identity.authenticate(created["api_user"], created["api_key"])
            ).tenant_name == "globex"
            with pytest.raises(AuthorizationFailed):
                await identity.authenticate("acme_trigger", created["api_key"])
        finally:
            await pool.close()
