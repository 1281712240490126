"""DKIM signing with dkimpy: what receivers verify (rsa-sha256, and ed25519-sha256 next to
it, RFC 8463), and the OpenSSL signature swap."""

from __future__ import annotations

import base64
import hashlib
import random

import dkim
import dkim.crypto
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519, rsa

from postwire_delivery.dkim import (
    ED25519_SHA256,
    RSA_SHA256,
    SIGNED,
    SigningKey,
    _openssl_sign,
    sign,
    signing_key,
)

MESSAGE = (
    b"From: =?utf-8?b?Wm/Dqw==?= <news@example.com>\r\n"
    b"Subject: =?utf-8?b?SGVsbG8gWm/Dqw==?=\r\n"
    b"Date: Mon, 30 Nov 2026 23:00:00 +0000\r\n"
    b"To: you@example.org\r\n"
    b"Message-ID: <e1@example.com>\r\n"
    b"MIME-Version: 1.0\r\n"
    b"Content-Type: text/plain; charset=utf-8\r\n"
    b"Content-Transfer-Encoding: quoted-printable\r\n"
    b"\r\n"
    + b"a line  with   spaces and trailing blanks   \r\n" * 3
    + b"x" * 76
    + b"=\r\n"
    + b"y" * 900
    + b"\r\n"
)


@pytest.fixture(scope="module")
def key() -> tuple[SigningKey, bytes]:
    private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = private.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()
    der = private.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    record = b"v=DKIM1; k=rsa; p=" + base64.b64encode(der)
    return signing_key("example.com", "pw202612", pem), record


@pytest.fixture(scope="module")
def ed_key() -> tuple[SigningKey, bytes]:
    """An Ed25519 key as ingest makes it (PKCS#8 PEM) and its RFC 8463 record: p= is the
    raw 32-byte public key, not a SubjectPublicKeyInfo."""
    private = ed25519.Ed25519PrivateKey.generate()
    pem = private.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()
    raw = private.public_key().public_bytes(
        serialization.Encoding.Raw, serialization.PublicFormat.Raw
    )
    record = b"v=DKIM1; k=ed25519; p=" + base64.b64encode(raw)
    return signing_key("example.com", "pw202612e", pem), record


def dns_for(record: bytes, name: bytes = b"pw202612._domainkey.example.com.") -> object:
    return dns_of({name: record})


def dns_of(records: dict[bytes, bytes]) -> object:
    def lookup(asked: bytes, timeout: int = 5) -> bytes | None:
        return records.get(asked)

    return lookup


def test_a_signed_copy_verifies_against_the_published_key(key: tuple[SigningKey, bytes]) -> None:
    signing, record = key
    signed = sign(MESSAGE, [signing])
    assert signed.startswith(b"DKIM-Signature: ")
    assert dkim.verify(signed, dnsfunc=dns_for(record))


def test_relaxed_canonicalisation_survives_whitespace_changes_in_transit(
    key: tuple[SigningKey, bytes],
) -> None:
    signing, record = key
    signed = sign(MESSAGE, [signing])
    folded = signed.replace(b"Subject: ", b"Subject:   ").replace(b"spaces and", b"spaces  and")
    assert dkim.verify(folded, dnsfunc=dns_for(record))


def test_changing_a_signed_header_or_adding_a_from_breaks_the_signature(
    key: tuple[SigningKey, bytes],
) -> None:
    signing, record = key
    signed = sign(MESSAGE, [signing])
    assert not dkim.verify(
        signed.replace(b"e1@example.com", b"e2@example.com"), dnsfunc=dns_for(record)
    )
    second_from = b"From: attacker@evil.test\r\n" + signed
    assert not dkim.verify(second_from, dnsfunc=dns_for(record))
    # An unsigned List-Unsubscribe added later breaks it too: absent headers are signed.
    added = signed.replace(
        b"MIME-Version", b"List-Unsubscribe: <https://evil.test/>\r\nMIME-Version"
    )
    assert not dkim.verify(added, dnsfunc=dns_for(record))


def test_the_header_names_relaxed_relaxed_the_headers_and_oversigns_from(
    key: tuple[SigningKey, bytes],
) -> None:
    signing, _ = key
    header = sign(MESSAGE, [signing]).split(b"\r\nFrom:")[0]
    tags = dkim.util.parse_tag_value(header.split(b":", 1)[1])
    assert tags[b"c"] == b"relaxed/relaxed"
    assert tags[b"d"] == b"example.com"
    assert tags[b"s"] == b"pw202612"
    signed_names = [h.strip() for h in tags[b"h"].replace(b"\r\n", b"").split(b":")]
    assert signed_names.count(b"from") == 2  # oversigned
    assert set(SIGNED) <= set(signed_names)


def test_openssl_gives_dkimpys_own_signature_bytes(key: tuple[SigningKey, bytes]) -> None:
    signing, _ = key
    fields = dkim.crypto.parse_pem_private_key(signing.private)
    digest = hashlib.sha256(b"canonicalised headers")
    assert _openssl_sign(digest, fields) == dkim.crypto.RSASSA_PKCS1_v1_5_sign(digest, fields)


def test_the_algorithm_is_read_from_the_key(
    key: tuple[SigningKey, bytes], ed_key: tuple[SigningKey, bytes]
) -> None:
    assert key[0].algorithm == RSA_SHA256
    assert key[0].private.startswith(b"-----BEGIN PRIVATE KEY-----")
    assert ed_key[0].algorithm == ED25519_SHA256
    assert len(base64.b64decode(ed_key[0].private)) == 32  # the seed, as dkimpy takes it


def test_an_ec_key_is_refused() -> None:
    from cryptography.hazmat.primitives.asymmetric import ec

    pem = (
        ec.generate_private_key(ec.SECP256R1())
        .private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        .decode()
    )
    with pytest.raises(ValueError, match="RSA or Ed25519"):
        signing_key("example.com", "s", pem)


def test_rsa_and_ed25519_signatures_both_verify(
    key: tuple[SigningKey, bytes], ed_key: tuple[SigningKey, bytes]
) -> None:
    (rsa_key, rsa_record), (ed, ed_record) = key, ed_key
    signed = sign(MESSAGE, [rsa_key, ed])
    dns = dns_of({
        b"pw202612._domainkey.example.com.": rsa_record,
        b"pw202612e._domainkey.example.com.": ed_record,
    })  # fmt: skip
    verifier = dkim.DKIM(signed)
    algorithms = []
    for idx in (0, 1):
        assert verifier.verify(idx=idx, dnsfunc=dns)
        algorithms.append(verifier.signature_fields[b"a"])
    assert algorithms == [RSA_SHA256, ED25519_SHA256]  # RSA's outermost
    tags = dkim.util.parse_tag_value(signed.split(b"\r\nDKIM-Signature:")[1].split(b"\r\nFrom:")[0])
    assert tags[b"s"] == b"pw202612e"
    assert tags[b"c"] == b"relaxed/relaxed"
    assert [h.strip() for h in tags[b"h"].replace(b"\r\n", b"").split(b":")].count(b"from") == 2


def test_an_ed25519_signature_fails_on_a_changed_header_or_another_key(
    ed_key: tuple[SigningKey, bytes],
) -> None:
    ed, record = ed_key
    name = b"pw202612e._domainkey.example.com."
    signed = sign(MESSAGE, [ed])
    assert dkim.verify(signed, dnsfunc=dns_of({name: record}))
    changed = signed.replace(b"e1@example.com", b"e2@example.com")
    assert not dkim.verify(changed, dnsfunc=dns_of({name: record}))
    other = ed25519.Ed25519PrivateKey.generate().public_key()
    raw = other.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    wrong = b"v=DKIM1; k=ed25519; p=" + base64.b64encode(raw)
    assert not dkim.verify(signed, dnsfunc=dns_of({name: wrong}))


def test_relaxed_body_canonicalisation_equals_dkimpys() -> None:
    """Ours skips rewriting single spaces; the result must be dkimpy's, byte for byte."""
    from dkim.canonicalization import (
        compress_whitespace,
        correct_empty_body,
        strip_trailing_lines,
        strip_trailing_whitespace,
    )

    from postwire_delivery.dkim import _relaxed_body

    def dkimpys(body: bytes) -> bytes:
        return bytes(
            correct_empty_body(
                strip_trailing_lines(compress_whitespace(strip_trailing_whitespace(body)))
            )
        )

    rng = random.Random(7)
    pieces = [b"a", b"b", b" ", b"\t", b"\r\n", b"\r", b"\n", b"  ", b" \t "]
    bodies = [b"", b"\r\n", b" \r\n\r\n", b"\t", b"x \t\r\n \r\n\r\n"]
    bodies += [b"".join(rng.choices(pieces, k=rng.randint(1, 60))) for _ in range(3000)]
    for body in bodies:
        assert _relaxed_body(body) == dkimpys(body), body
