"""Secrets the platform must read back are stored encrypted (security review, issue 6):
webhook app keys and DKIM private keys never sit in the database as plaintext, and pushes
are still signed with the app key the tenant was shown."""

from __future__ import annotations

import asyncpg

from postwire_testkit.api import Tenant
from postwire_testkit.http import HttpReceiver


async def test_webhook_app_key_is_not_stored_in_plaintext(
    tenant: Tenant, receiver: HttpReceiver, db: asyncpg.Connection
) -> None:
    hook = await tenant.add_webhook(receiver.url(f"/stored-{tenant.name}"), ["delivered"])
    stored = await db.fetchval("SELECT app_key FROM notifier.webhooks WHERE id = $1", hook["id"])
    assert stored.startswith("fernet:")
    assert hook["app_key"] not in stored


async def test_dkim_private_key_is_not_stored_in_plaintext(
    tenant: Tenant, db: asyncpg.Connection
) -> None:
    stored = await db.fetchval(
        "SELECT dkim_private_key FROM ingest.domains WHERE name = $1", tenant.domain
    )
    assert stored.startswith("fernet:")
    assert "PRIVATE KEY" not in stored
