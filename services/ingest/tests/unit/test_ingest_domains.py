"""Sender domain names, DKIM keys and the DNS records a user publishes."""

from __future__ import annotations

import base64
import re
from datetime import UTC, datetime

import pytest
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ed25519, padding, rsa

from postwire_common.addresses import normalize_address
from postwire_common.config import Settings
from postwire_common.errors import InvalidValue
from postwire_ingest.domains import (
    DkimKey,
    dns_records,
    generate_dkim_key,
    generate_ed25519_key,
    normalize_domain,
)

DNS_LABEL = re.compile(r"^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$")


@pytest.mark.parametrize(
    ("given", "normalized"),
    [
        ("example.com", "example.com"),
        ("Example.COM", "example.com"),
        ("example.com.", "example.com"),
        ("  mail.Example.co.uk  ", "mail.example.co.uk"),
        ("a1-b2.example", "a1-b2.example"),
        ("xn--mnchen-3ya.de", "xn--mnchen-3ya.de"),
        ("münchen.de", "xn--mnchen-3ya.de"),
        ("MÜNCHEN.DE", "xn--mnchen-3ya.de"),
        ("例え.テスト", "xn--r8jz45g.xn--zckzah"),
        ("a" * 62 + ".com", "a" * 62 + ".com"),  # 66 characters: the KooMessage maximum
        ("a" * 30 + "." + "b" * 30 + ".org", "a" * 30 + "." + "b" * 30 + ".org"),
    ],
)
def test_normalize_domain(given: str, normalized: str) -> None:
    assert normalize_domain(given) == normalized


@pytest.mark.parametrize(
    "given",
    [
        "",
        "   ",
        "localhost",  # one label
        "example",
        ".com",
        "example..com",
        "-example.com",
        "example-.com",
        "exa_mple.com",
        "exa mple.com",
        "ex*ample.com",
        "ann@example.com",
        "http://example.com",
        "example.com/path",
        "a" * 63 + ".com",  # 67 characters
        "1.2.3.4",  # an IP address
        "192.168.0.1.",
        "[192.0.2.1]",
        "::1",
        "example\n.com",
        "example.com\n.",
        "example.com\r\n.",
    ],
)
def test_normalize_domain_refuses(given: str) -> None:
    with pytest.raises(InvalidValue):
        normalize_domain(given)


@pytest.mark.parametrize(
    ("given", "normalized"),
    [
        ("faß.de", "xn--fa-hia.de"),  # IDNA 2008: ß is a letter of its own (DENIC)
        ("ελλάς.gr", "xn--hxarsa0b.gr"),  # final sigma kept
    ],
)
def test_normalize_domain_uses_idna_2008(given: str, normalized: str) -> None:
    assert normalize_domain(given) == normalized


@pytest.mark.parametrize("domain", ["münchen.de", "例え.テスト", "faß.de", "ελλάς.gr"])
def test_a_domain_and_its_addresses_normalize_alike(domain: str) -> None:
    # A sender on a registered domain must be found on that domain.
    assert normalize_address(f"news@{domain}").split("@")[1] == normalize_domain(domain)


# -- DKIM keys -------------------------------------------------------------------------


@pytest.fixture(scope="module")
def dkim() -> DkimKey:
    return generate_dkim_key(datetime(2024, 5, 6, tzinfo=UTC))


def public_key_of_record(value: str) -> rsa.RSAPublicKey:
    tags = dict(part.strip().split("=", 1) for part in value.split(";") if part.strip())
    assert tags["v"] == "DKIM1"
    assert tags["k"] == "rsa"
    key = serialization.load_der_public_key(base64.b64decode(tags["p"]))
    assert isinstance(key, rsa.RSAPublicKey)
    return key


def test_dkim_selector_is_a_dns_label(dkim: DkimKey) -> None:
    assert DNS_LABEL.match(dkim.selector)


def test_dkim_key_is_rsa_2048_at_least(dkim: DkimKey) -> None:
    private = serialization.load_pem_private_key(dkim.private_pem.encode(), password=None)
    assert isinstance(private, rsa.RSAPrivateKey)
    assert private.key_size >= 2048


def test_dkim_record_verifies_a_signature_made_with_the_private_key(dkim: DkimKey) -> None:
    [record] = [
        r for r in dns_records(make_settings(), "shop.example", dkim.selector, dkim.public_b64, {})
        if r["purpose"] == "dkim"
    ]  # fmt: skip
    public = public_key_of_record(record["value"])
    private = serialization.load_pem_private_key(dkim.private_pem.encode(), password=None)
    assert isinstance(private, rsa.RSAPrivateKey)
    data = b"from:Shop <news@shop.example>\r\nsubject:Hi\r\n"
    signature = private.sign(data, padding.PKCS1v15(), hashes.SHA256())
    public.verify(signature, data, padding.PKCS1v15(), hashes.SHA256())
    with pytest.raises(InvalidSignature):
        public.verify(signature, data + b"x", padding.PKCS1v15(), hashes.SHA256())


def test_each_dkim_key_is_new() -> None:
    first, second = generate_dkim_key(), generate_dkim_key()
    assert first.public_b64 != second.public_b64
    assert first.private_pem != second.private_pem


def test_selectors_name_the_month_or_for_a_rotation_the_minute_and_never_repeat() -> None:
    when = datetime(2024, 5, 6, 12, 30, tzinfo=UTC)
    first = generate_dkim_key(when).selector
    assert re.fullmatch(r"pw202405[0-9a-f]{4}", first)
    rotated = generate_dkim_key(when, replacing=first).selector
    assert re.fullmatch(r"pw202405061230[0-9a-f]{4}", rotated)
    # The same domain added again in the same month: another selector, never the old key's.
    assert len({generate_dkim_key(when).selector for _ in range(5)}) > 1
    # Ed25519's is its RSA key's with an "e", so it never names an RSA key's record.
    assert generate_ed25519_key(first).selector == f"{first}e"


def test_ed25519_key_record_is_the_raw_public_key_rfc_8463() -> None:
    key = generate_ed25519_key("pw202405ab12")
    assert DNS_LABEL.match(key.selector)
    private = serialization.load_pem_private_key(key.private_pem.encode(), password=None)
    assert isinstance(private, ed25519.Ed25519PrivateKey)
    assert key.private_pem.startswith("-----BEGIN PRIVATE KEY-----")  # PKCS#8, like RSA's
    raw = base64.b64decode(key.public_b64)
    assert len(raw) == 32  # RFC 8463 4.2: not a SubjectPublicKeyInfo (44 bytes)
    listed = dns_records(
        make_settings(), "shop.example", "pw202405", "AAAA", {"dkim_ed25519": "ok"},
        ed25519_key=(key.selector, key.public_b64),
    )  # fmt: skip
    [record] = [r for r in listed if r["purpose"] == "dkim_ed25519"]
    assert record["type"] == "TXT"
    assert record["host"] == f"{key.selector}._domainkey.shop.example"
    assert record["value"] == f"v=DKIM1; k=ed25519; p={key.public_b64}"
    assert record["status"] == "ok"
    public = ed25519.Ed25519PublicKey.from_public_bytes(raw)
    data = b"canonicalised headers"
    public.verify(private.sign(data), data)
    with pytest.raises(InvalidSignature):
        public.verify(private.sign(data), data + b"x")
    assert generate_ed25519_key("pw202405ab12").public_b64 != key.public_b64


def test_no_ed25519_record_unless_it_is_on(dkim: DkimKey) -> None:
    listed = dns_records(make_settings(), "shop.example", dkim.selector, dkim.public_b64, {})
    assert "dkim_ed25519" not in {r["purpose"] for r in listed}


# -- DNS records ----------------------------------------------------------------------


def make_settings() -> Settings:
    # dns_records reads only these two settings, so the environment cannot interfere.
    return Settings(
        _env_file=None, helo_name="mx.postwire.test", public_url="https://links.postwire.test"
    )


@pytest.fixture(scope="module")
def records(dkim: DkimKey) -> dict[str, dict[str, str]]:
    listed = dns_records(make_settings(), "shop.example", dkim.selector, dkim.public_b64, {})
    assert len(listed) == 5
    by_purpose = {r["purpose"]: r for r in listed}
    assert len(by_purpose) == 5
    return by_purpose


def test_five_records_with_the_api_purposes(records: dict[str, dict[str, str]]) -> None:
    assert set(records) == {"spf", "dkim", "dmarc", "mx", "tracking"}
    for record in records.values():
        assert set(record) == {"purpose", "type", "host", "value", "status", "found", "detail"}


@pytest.mark.parametrize(
    ("purpose", "kind", "host"),
    [
        ("spf", "TXT", "shop.example"),
        ("dkim", "TXT", "pw202405._domainkey.shop.example"),
        ("dmarc", "TXT", "_dmarc.shop.example"),
        ("mx", "MX", "shop.example"),
        ("tracking", "CNAME", "track.shop.example"),
    ],
)
def test_record_type_and_host(
    records: dict[str, dict[str, str]], dkim: DkimKey, purpose: str, kind: str, host: str
) -> None:
    assert records[purpose]["type"] == kind
    expected_host = host.replace("pw202405", dkim.selector)
    assert records[purpose]["host"] == expected_host


def test_dkim_host_is_selector_domainkey_domain(
    records: dict[str, dict[str, str]], dkim: DkimKey
) -> None:
    assert records["dkim"]["host"] == f"{dkim.selector}._domainkey.shop.example"
    assert f"p={dkim.public_b64}" in records["dkim"]["value"]


@pytest.mark.parametrize(
    ("purpose", "pattern"),
    [
        ("spf", r"^v=spf1 .*mx\.postwire\.test.* [~-]all$"),
        ("dkim", r"^v=DKIM1; "),
        ("dmarc", r"^v=DMARC1; p=(none|quarantine|reject)"),
        ("mx", r"^\d+ mx\.postwire\.test$"),
        ("tracking", r"^links\.postwire\.test$"),
    ],
)
def test_record_values(records: dict[str, dict[str, str]], purpose: str, pattern: str) -> None:
    assert re.search(pattern, records[purpose]["value"])


def test_records_are_pending_until_checked(records: dict[str, dict[str, str]]) -> None:
    assert {r["status"] for r in records.values()} == {"pending"}


def test_record_status_comes_from_the_given_statuses(dkim: DkimKey) -> None:
    listed = dns_records(
        make_settings(),
        "shop.example",
        dkim.selector,
        dkim.public_b64,
        {"spf": "verified", "dkim": "failed"},
    )
    assert {r["purpose"]: r["status"] for r in listed} == {
        "spf": "verified",
        "dkim": "failed",
        "dmarc": "pending",
        "mx": "pending",
        "tracking": "pending",
    }


@pytest.mark.parametrize(
    "name", ["x.send.test", "mail.local", "a.localhost", "b.invalid", "c.onion"]
)
def test_special_use_domains_are_refused_as_sender_addresses_on_them_would_be(name: str) -> None:
    from postwire_common.addresses import normalize_address
    from postwire_common.errors import InvalidEmail

    with pytest.raises(InvalidValue) as caught:
        normalize_domain(name)
    assert "special-use or reserved name" in caught.value.description
    with pytest.raises(InvalidEmail):
        normalize_address(f"news@{name}")
