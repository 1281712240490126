"""``postwire rotate-secrets`` re-encrypts every stored secret with the first key, after
which the old key can be dropped; production refuses to run without keys."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

import asyncpg
import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from postwire_common import db
from postwire_common.crypto import Keyring, UndecryptableSecret, generate_key
from postwire_common.identity import Identity
from postwire_common.schemas import DkimKey, Recipient, RecipientBatch
from postwire_delivery.store import DeliveryStore
from postwire_ingest import accounts
from postwire_ingest.domains import generate_dkim_key
from postwire_ingest.store import IngestStore
from postwire_notifier.store import NotifierStore, Webhook
from postwire_testkit.infra import migrated_database, unique_name

APP_KEY = "webhook-app-key-0123456789abcdef"


def postwire(env: dict[str, str], *args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("POSTWIRE_")}
    return subprocess.run(  # noqa: S603 - our own command
        [sys.executable, "-m", "postwire", *args],
        env={**clean, **env},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        cwd=cwd,
    )


@pytest.fixture
async def database_url() -> AsyncIterator[str]:
    async with migrated_database() as url:
        yield url


@pytest.mark.integration
async def test_rotate_secrets_lets_the_old_key_go(database_url: str, tmp_path: Path) -> None:
    old, new = generate_key(), generate_key()
    pool = await db.create_pool(database_url, size=2)
    try:
        ingest = IngestStore(pool, Keyring([old]))
        account = await accounts.create_account(ingest, unique_name("acct"))
        dkim = generate_dkim_key()
        await ingest.insert_domain(
            account["account_id"],
            "shop.example",
            dkim.selector,
            dkim.private_pem,
            dkim.public_b64,
            5,
        )
        # delivery's copy, as it comes with the mail it signs
        stored = await ingest.get_domain(account["account_id"], "shop.example")
        batch = RecipientBatch(
            request_id="R1", content_id="R1", tenant_id=account["account_id"],
            sender="news@shop.example", domain="example.org", recv_time=datetime.now(UTC),
            recipients=[Recipient(env_id=unique_name("E"), msg_id="<m@shop.example>",
                                  rcpt="you@example.org")],
            dkim=[DkimKey(domain="shop.example", selector=dkim.selector,
                          private_key=stored["dkim_private_key"])],
        )  # fmt: skip
        await DeliveryStore(pool).intake([(batch, "example.org")])
        hook = Webhook(unique_name("W"), account["account_id"], "http://h/", ["sent"], APP_KEY)
        await NotifierStore(pool, Keyring([old])).insert_webhook(hook, 10)
        before = await stored_secrets(pool)
        assert dkim.private_pem not in before
        assert APP_KEY not in before
        assert account["api_key"] not in before

        done = postwire(
            {"POSTWIRE_DATABASE_URL": database_url, "POSTWIRE_SECRET_KEYS": f"{new},{old}"},
            "rotate-secrets",
            cwd=tmp_path,
        )
        assert done.returncode == 0, done.stderr
        assert "re-encrypted dkim_private_keys  2" in done.stdout  # ingest's, delivery's
        assert "re-encrypted webhook_app_keys   1" in done.stdout
        assert "re-encrypted api_keys           1" in done.stdout

        after = await stored_secrets(pool)
        assert set(after).isdisjoint(before)
        for value in before:
            with pytest.raises(UndecryptableSecret):
                Keyring([new]).decrypt(value)
        # The new key alone reads everything, and the DKIM key still signs.
        only_new = IngestStore(pool, Keyring([new]))
        _, api_key = await Identity(pool, Keyring([new])).signing_secret(account["api_user"])
        assert api_key == account["api_key"]
        pem = await only_new.dkim_private_key(account["account_id"], "shop.example")
        assert_signs_for(pem, dkim.public_b64)
        keys = await DeliveryStore(pool).signing_keys(
            account["account_id"], "shop.example", [dkim.selector]
        )
        assert Keyring([new]).decrypt(keys[dkim.selector]) == dkim.private_pem
        notifier = NotifierStore(pool, Keyring([new]))
        assert (await notifier.webhook(account["account_id"], hook.id)).app_key == APP_KEY
    finally:
        await pool.close()


async def stored_secrets(pool: asyncpg.Pool) -> list[str]:
    rows = await pool.fetch(
        "SELECT dkim_private_key AS v FROM ingest.domains "
        "UNION ALL SELECT app_key FROM notifier.webhooks "
        "UNION ALL SELECT private_key FROM delivery.signing_keys "
        "UNION ALL SELECT key_sealed FROM ingest.api_users"
    )
    return [r["v"] for r in rows]


def assert_signs_for(pem: str, public_b64: str) -> None:
    import base64

    private = serialization.load_pem_private_key(pem.encode(), password=None)
    assert isinstance(private, rsa.RSAPrivateKey)
    public = serialization.load_der_public_key(base64.b64decode(public_b64))
    assert isinstance(public, rsa.RSAPublicKey)
    data = b"from:Shop <news@shop.example>\r\n"
    signature = private.sign(data, padding.PKCS1v15(), hashes.SHA256())
    public.verify(signature, data, padding.PKCS1v15(), hashes.SHA256())


@pytest.mark.parametrize("services", [["ingest"], ["notifier"], ["all"]])
def test_production_without_keys_refuses_to_start(services: list[str], tmp_path: Path) -> None:
    done = postwire(
        {
            "POSTWIRE_ENV": "production",
            "POSTWIRE_PROCESSES": "1",
            "POSTWIRE_HTTP_PORT": "0",
            # Unreachable on purpose: the refusal comes before any connection is tried.
            "POSTWIRE_DATABASE_URL": "postgresql://postgres@127.0.0.1:1/none",
            "POSTWIRE_BROKER_URL": "amqp://guest:guest@127.0.0.1:1/",
        },
        "run",
        *services,
        cwd=tmp_path,
    )
    assert done.returncode == 3, done.stdout + done.stderr
    assert "POSTWIRE_SECRET_KEYS is not set" in done.stderr
    assert not (tmp_path / ".dev").exists()


def test_rotate_secrets_needs_keys_in_production(tmp_path: Path) -> None:
    done = postwire({"POSTWIRE_ENV": "production"}, "rotate-secrets", cwd=tmp_path)
    assert done.returncode == 1
    assert "POSTWIRE_SECRET_KEYS is not set" in done.stderr


def test_generate_secret_key_prints_a_usable_key(tmp_path: Path) -> None:
    done = postwire({}, "generate-secret-key", cwd=tmp_path)
    key = done.stdout.strip()
    assert Keyring([key]).decrypt(Keyring([key]).encrypt("x")) == "x"
