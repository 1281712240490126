"""Webhook app keys are stored encrypted, still sign pushes, survive key rotation, and rows
stored in plaintext before encryption existed are encrypted at start."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime

import asyncpg
import pytest
from cryptography.fernet import InvalidToken

from postwire_common import db
from postwire_common.crypto import Keyring, UndecryptableSecret, generate_key
from postwire_notifier.signature import sign, verify
from postwire_notifier.store import NotifierStore, Webhook
from postwire_testkit.infra import migrated_database, unique_name

pytestmark = pytest.mark.integration

APP_KEY = "app-key-plaintext-0123456789abcdef"


@pytest.fixture
async def pool() -> AsyncIterator[asyncpg.Pool]:
    async with migrated_database() as url:
        made = await db.create_pool(url)
        yield made
        await made.close()


async def add_webhook(store: NotifierStore, app_key: str = APP_KEY) -> Webhook:
    hook = Webhook(unique_name("W"), unique_name("t"), "http://127.0.0.1:9/h", ["sent"], app_key)
    await store.insert_webhook(hook, 10)
    return hook


async def stored(pool: asyncpg.Pool, hook: Webhook) -> str:
    return str(await pool.fetchval("SELECT app_key FROM notifier.webhooks WHERE id = $1", hook.id))


async def test_the_app_key_is_stored_encrypted_and_read_back_to_sign(pool: asyncpg.Pool) -> None:
    store = NotifierStore(pool, Keyring([generate_key()]))
    hook = await add_webhook(store)
    column = await stored(pool, hook)
    assert APP_KEY not in column
    assert column.startswith("fernet:")
    assert (await store.webhook(hook.tenant_id, hook.id)).app_key == APP_KEY
    assert [h.app_key for h in await store.tenant_webhooks(hook.tenant_id)] == [APP_KEY]
    await store.create_pushes([(hook.id, unique_name("E"), datetime.now(UTC), "tok", {})])
    [push] = [p for p in await store.claim("n", 100, [], 30.0) if p.webhook_id == hook.id]
    assert verify(APP_KEY, 1700000000, "tok", sign(push.app_key, 1700000000, "tok"))


async def test_rotation_re_encrypts_so_the_old_key_can_go(pool: asyncpg.Pool) -> None:
    old, new = generate_key(), generate_key()
    hook = await add_webhook(NotifierStore(pool, Keyring([old])))
    before = await stored(pool, hook)
    both = NotifierStore(pool, Keyring([new, old]))
    assert await both.rewrite_app_keys(rotate=True) == 1
    after = await stored(pool, hook)
    assert after != before
    assert APP_KEY not in after
    only_new = NotifierStore(pool, Keyring([new]))
    assert (await only_new.webhook(hook.tenant_id, hook.id)).app_key == APP_KEY
    # Without rotation the old key could not have been dropped.
    with pytest.raises((UndecryptableSecret, InvalidToken)):
        Keyring([new]).decrypt(before)


async def test_plaintext_rows_from_before_are_encrypted_at_start(pool: asyncpg.Pool) -> None:
    keyring = Keyring([generate_key()])
    store = NotifierStore(pool, keyring)
    hook = await add_webhook(store)
    await pool.execute("UPDATE notifier.webhooks SET app_key = $2 WHERE id = $1", hook.id, APP_KEY)
    assert (await store.webhook(hook.tenant_id, hook.id)).app_key == APP_KEY  # still usable
    assert await store.rewrite_app_keys(rotate=False) == 1
    assert await store.rewrite_app_keys(rotate=False) == 0  # once
    assert (await stored(pool, hook)).startswith("fernet:")
    assert (await store.webhook(hook.tenant_id, hook.id)).app_key == APP_KEY
