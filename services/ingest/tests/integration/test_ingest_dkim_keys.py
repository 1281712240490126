"""A domain's DKIM keys on the real PostgreSQL and the loopback DNS: the Ed25519 key signs
(is handed to delivery with the sender) only while it is on and its record verifies;
turning it off keeps the key; a rotation replaces it; a check of a key replaced meanwhile
is dropped; every stored private key is encrypted and re-encrypted by rotate-secrets."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from typing import Any

import asyncpg
import pytest

from postwire_common import db
from postwire_common.config import Settings
from postwire_common.crypto import Keyring, generate_key
from postwire_ingest.domain_checks import DomainChecker
from postwire_ingest.domains import generate_dkim_key, generate_ed25519_key
from postwire_ingest.store import IngestStore
from postwire_testkit.dns import LoopbackDns
from postwire_testkit.infra import migrated_database, unique_name

pytestmark = pytest.mark.integration

HELO = "mail.postwire.test"
SECRET, NEWER = generate_key(), generate_key()


@pytest.fixture(scope="module")
async def pool() -> AsyncIterator[asyncpg.Pool]:
    async with migrated_database() as url:
        made: asyncpg.Pool = await db.create_pool(url)
        yield made
        await made.close()


@pytest.fixture(scope="module")
def dns() -> Iterator[LoopbackDns]:
    server = LoopbackDns().start()
    server.a(HELO, "192.0.2.10")
    yield server
    server.stop()


@pytest.fixture
def store(pool: asyncpg.Pool) -> IngestStore:
    return IngestStore(pool, Keyring([SECRET, NEWER]))  # reads keys before and after rotation


def checker(store: IngestStore, dns: LoopbackDns) -> DomainChecker:
    settings = Settings(
        _env_file=None,
        helo_name=HELO,
        sending_ips=["192.0.2.10"],
        dns_nameservers=[dns.nameserver],
        public_url="https://links.postwire.test",
    )
    return DomainChecker(settings, store)


async def new_domain(store: IngestStore, *, ed25519: bool) -> tuple[str, str]:
    """(account, domain) with a sender news@<domain>."""
    account = unique_name("acct")
    await store.pool.execute("INSERT INTO ingest.accounts (id, name) VALUES ($1, $1)", account)
    name = f"{unique_name('d').lower()}.example"
    key = generate_dkim_key()
    ed = generate_ed25519_key(key.selector) if ed25519 else None
    await store.insert_domain(
        account, name, key.selector, key.private_pem, key.public_b64, 5,
        (ed.selector, ed.private_pem, ed.public_b64) if ed else None,
    )  # fmt: skip
    await store.insert_sender(account, f"news@{name}", name, None)
    return account, name


def publish(dns: LoopbackDns, name: str, row: Any, *, ed25519: bool = True) -> None:
    dns.txt(name, f"v=spf1 a:{HELO} ~all")
    dns.txt(
        f"{row['dkim_selector']}._domainkey.{name}", f"v=DKIM1; k=rsa; p={row['dkim_public_key']}"
    )
    if ed25519:
        dns.txt(
            f"{row['dkim_ed25519_selector']}._domainkey.{name}",
            f"v=DKIM1; k=ed25519; p={row['dkim_ed25519_public_key']}",
        )


async def signing(store: IngestStore, account: str, name: str) -> tuple[str, str | None]:
    sender = await store.get_sender(account, f"news@{name}")
    assert sender is not None
    return sender.dkim_selector, sender.dkim_ed25519_selector


async def test_the_ed25519_key_signs_once_its_record_verifies(
    store: IngestStore, dns: LoopbackDns
) -> None:
    account, name = await new_domain(store, ed25519=True)
    row = await store.get_domain(account, name)
    assert row["dkim_ed25519"]
    assert row["dkim_ed25519_selector"] == row["dkim_selector"] + "e"
    assert row["dkim_ed25519_private_key"].startswith("fernet:")  # encrypted at rest
    assert Keyring([SECRET]).decrypt(row["dkim_ed25519_private_key"]).startswith("-----BEGIN")
    assert await signing(store, account, name) == (row["dkim_selector"], None)

    publish(dns, name, row, ed25519=False)
    checked = await checker(store, dns).verify(account, name)
    assert checked["status"] == "usable"  # the Ed25519 record does not count for the state
    assert checked["record_status"]["dkim_ed25519"] == "missing"
    assert await signing(store, account, name) == (row["dkim_selector"], None)

    dns.txt(f"{row['dkim_ed25519_selector']}._domainkey.{name}", "v=DKIM1; k=rsa; p=AAAA")
    checked = await checker(store, dns).verify(account, name)
    assert checked["record_status"]["dkim_ed25519"] == "wrong"
    assert checked["record_found"]["dkim_ed25519"]["found"] == ["v=DKIM1; k=rsa; p=AAAA"]

    dns.remove(f"{row['dkim_ed25519_selector']}._domainkey.{name}")
    publish(dns, name, row)
    checked = await checker(store, dns).verify(account, name)
    assert checked["record_status"]["dkim_ed25519"] == "ok"
    assert await signing(store, account, name) == (
        row["dkim_selector"],
        row["dkim_ed25519_selector"],
    )
    sender = await store.get_sender(account, f"news@{name}")
    assert sender is not None
    assert sender.dkim_ed25519_private_key == row["dkim_ed25519_private_key"]  # encrypted


async def test_off_keeps_the_key_and_on_brings_the_same_record_back(
    store: IngestStore, dns: LoopbackDns
) -> None:
    account, name = await new_domain(store, ed25519=False)
    row = await store.get_domain(account, name)
    assert not row["dkim_ed25519"]
    assert row["dkim_ed25519_selector"] is None
    domains = checker(store, dns)

    on = await domains.set_ed25519(account, name, True)
    assert on["dkim_ed25519"]
    assert on["dkim_ed25519_selector"].endswith("e")
    publish(dns, name, on)
    await domains.verify(account, name)
    assert (await signing(store, account, name))[1] == on["dkim_ed25519_selector"]

    again = await domains.set_ed25519(account, name, True)  # on while on: nothing changes
    assert again["dkim_ed25519_public_key"] == on["dkim_ed25519_public_key"]
    assert again["record_status"]["dkim_ed25519"] == "ok"

    off = await domains.set_ed25519(account, name, False)
    assert not off["dkim_ed25519"]
    assert off["dkim_ed25519_public_key"] == on["dkim_ed25519_public_key"]  # kept
    assert "dkim_ed25519" not in off["record_status"]
    assert await signing(store, account, name) == (row["dkim_selector"], None)
    checked = await domains.verify(account, name)  # not checked while off
    assert "dkim_ed25519" not in checked["record_status"]

    back = await domains.set_ed25519(account, name, True)
    assert back["dkim_ed25519_selector"] == on["dkim_ed25519_selector"]
    assert back["dkim_ed25519_public_key"] == on["dkim_ed25519_public_key"]
    assert (await signing(store, account, name))[1] is None  # until it verifies again
    await domains.verify(account, name)
    assert (await signing(store, account, name))[1] == on["dkim_ed25519_selector"]


async def test_a_rotation_replaces_the_ed25519_key_which_signs_once_verified(
    store: IngestStore, dns: LoopbackDns
) -> None:
    account, name = await new_domain(store, ed25519=True)
    row = await store.get_domain(account, name)
    publish(dns, name, row)
    domains = checker(store, dns)
    await domains.verify(account, name)
    assert (await signing(store, account, name))[1] == row["dkim_ed25519_selector"]

    rotated = await domains.rotate(account, name)
    assert rotated["dkim_next_selector"]
    assert rotated["dkim_ed25519_selector"] not in (None, row["dkim_ed25519_selector"])
    assert rotated["dkim_ed25519_selector"] == rotated["dkim_next_selector"] + "e"
    assert rotated["dkim_ed25519_public_key"] != row["dkim_ed25519_public_key"]
    assert "dkim_ed25519" not in rotated["record_status"]
    # The RSA key signs alone until the new Ed25519 record verifies.
    assert await signing(store, account, name) == (row["dkim_selector"], None)
    checked = await domains.verify(account, name)
    assert checked["record_status"]["dkim_ed25519"] == "missing"  # a new selector
    publish(dns, name, rotated)
    await domains.verify(account, name)
    assert (await signing(store, account, name))[1] == rotated["dkim_ed25519_selector"]


async def test_a_domain_with_ed25519_off_keeps_its_key_through_a_rotation(
    store: IngestStore, dns: LoopbackDns
) -> None:
    account, name = await new_domain(store, ed25519=True)
    off = await checker(store, dns).set_ed25519(account, name, False)
    rotated = await checker(store, dns).rotate(account, name)
    assert rotated["dkim_ed25519_selector"] == off["dkim_ed25519_selector"]
    assert rotated["dkim_ed25519_private_key"] == off["dkim_ed25519_private_key"]


async def test_a_check_of_an_ed25519_key_replaced_meanwhile_is_dropped(
    store: IngestStore,
) -> None:
    account, name = await new_domain(store, ed25519=True)
    row = await store.get_domain(account, name)
    statuses = {"spf": "ok", "dkim": "ok", "dkim_ed25519": "ok"}
    found = {"dkim_ed25519": {"found": ["x"], "detail": None}}
    saved = await store.save_domain_check(
        account,
        name,
        statuses,
        found,
        "usable",
        "pw190001e",  # not the key it has
    )
    assert saved is not None
    assert "dkim_ed25519" not in saved[1]["record_status"]
    assert "dkim_ed25519" not in saved[1]["record_found"]
    assert saved[1]["record_status"]["dkim"] == "ok"
    saved = await store.save_domain_check(
        account, name, statuses, found, "usable", row["dkim_ed25519_selector"]
    )
    assert saved is not None
    assert saved[1]["record_status"]["dkim_ed25519"] == "ok"


async def test_rotate_secrets_re_encrypts_every_dkim_key_column(
    store: IngestStore, dns: LoopbackDns
) -> None:
    account, name = await new_domain(store, ed25519=True)
    await checker(store, dns).rotate(account, name)  # a next RSA key waits too
    before = await store.get_domain(account, name)
    columns = ("dkim_private_key", "dkim_next_private_key", "dkim_ed25519_private_key")
    plain = {c: Keyring([SECRET]).decrypt(before[c]) for c in columns}

    newer = NEWER
    rewritten = await IngestStore(store.pool, Keyring([newer, SECRET])).rewrite_dkim_keys(
        rotate=True
    )
    assert rewritten >= 3  # other tests' domains share the database
    after = await store.get_domain(account, name)
    for column in columns:
        assert after[column] != before[column]
        assert Keyring([newer]).decrypt(after[column]) == plain[column]

    # Plaintext keys (stored before encryption existed) are encrypted without rotate.
    await store.pool.execute(
        "UPDATE ingest.domains SET dkim_ed25519_private_key = $3 "
        "WHERE account_id = $1 AND name = $2",
        account,
        name,
        plain["dkim_ed25519_private_key"],
    )
    assert await IngestStore(store.pool, Keyring([newer])).rewrite_dkim_keys(rotate=False) == 1
    final = await store.get_domain(account, name)
    assert (
        Keyring([newer]).decrypt(final["dkim_ed25519_private_key"])
        == (plain["dkim_ed25519_private_key"])
    )
