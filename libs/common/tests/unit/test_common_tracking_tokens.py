"""Tracking tokens: what a signed token claims reads back only under a key we hold and for
the kind of hit it was made for; anything altered, cut, padded or made up reads as None;
links in delivered mail keep working while a rotated-out key stays listed."""

from __future__ import annotations

import base64

import pytest

from postwire_common.tracking.tokens import Claim, Kind, TokenSigner

OLD_KEY = b"o" * 32
NEW_KEY = b"n" * 32
CLAIM = Claim(Kind.CLICK, "acc_42", "env_01HZX", "cnt_01HZY", 7)


def test_a_signed_claim_verifies_to_itself_for_each_kind() -> None:
    signer = TokenSigner([NEW_KEY])
    for kind in Kind:
        claim = Claim(kind, "acc_42", "env_01HZX", "cnt_01HZY", 3 if kind is Kind.CLICK else 0)
        assert signer.verify(kind, signer.sign(claim)) == claim


def test_link_numbers_are_part_of_the_claim() -> None:
    signer = TokenSigner([NEW_KEY])
    tokens = {signer.sign(Claim(Kind.CLICK, "a", "e", "c", n)) for n in range(50)}
    assert len(tokens) == 50
    for n in (0, 1, 49, 10_000):
        claim = signer.verify(Kind.CLICK, signer.sign(Claim(Kind.CLICK, "a", "e", "c", n)))
        assert claim is not None
        assert claim.n == n


def test_a_token_made_for_one_kind_does_not_verify_as_another() -> None:
    signer = TokenSigner([NEW_KEY])
    token = signer.sign(CLAIM)
    assert signer.verify(Kind.OPEN, token) is None
    assert signer.verify(Kind.UNSUBSCRIBE, token) is None
    open_token = signer.sign(Claim(Kind.OPEN, "acc_42", "env_01HZX", "cnt_01HZY"))
    assert signer.verify(Kind.UNSUBSCRIBE, open_token) is None


def test_a_token_signed_under_another_key_does_not_verify() -> None:
    token = TokenSigner([OLD_KEY]).sign(CLAIM)
    assert TokenSigner([NEW_KEY]).verify(Kind.CLICK, token) is None


def test_after_a_rotation_old_links_verify_and_new_ones_use_the_new_key() -> None:
    old_token = TokenSigner([OLD_KEY]).sign(CLAIM)
    rotated = TokenSigner([NEW_KEY, OLD_KEY])
    assert rotated.verify(Kind.CLICK, old_token) == CLAIM
    new_token = rotated.sign(CLAIM)
    assert new_token == TokenSigner([NEW_KEY]).sign(CLAIM)
    assert TokenSigner([OLD_KEY]).verify(Kind.CLICK, new_token) is None
    # Once the old key is dropped, its links stop working.
    assert TokenSigner([NEW_KEY]).verify(Kind.CLICK, old_token) is None


def test_a_signer_needs_a_key() -> None:
    with pytest.raises(ValueError, match="key"):
        TokenSigner([])


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def test_any_flipped_byte_of_the_claim_or_the_mac_is_refused() -> None:
    signer = TokenSigner([NEW_KEY])
    body, mac = signer.sign(CLAIM).split(".")
    payload, tag = _unb64(body), _unb64(mac)
    for i in range(len(payload)):
        flipped = bytearray(payload)
        flipped[i] ^= 0x01
        assert signer.verify(Kind.CLICK, f"{_b64(bytes(flipped))}.{mac}") is None, i
    for i in range(len(tag)):
        flipped = bytearray(tag)
        flipped[i] ^= 0x80
        assert signer.verify(Kind.CLICK, f"{body}.{_b64(bytes(flipped))}") is None, i


def test_a_claim_for_someone_else_with_the_original_mac_is_refused() -> None:
    signer = TokenSigner([NEW_KEY])
    _, mac = signer.sign(CLAIM).split(".")
    for forged in (
        Claim(Kind.CLICK, "acc_43", "env_01HZX", "cnt_01HZY", 7),
        Claim(Kind.CLICK, "acc_42", "env_01HZZ", "cnt_01HZY", 7),
        Claim(Kind.CLICK, "acc_42", "env_01HZX", "cnt_01HZY", 8),
    ):
        body = _b64(f"{forged.tenant_id}|{forged.env_id}|{forged.content_id}|{forged.n}".encode())
        assert signer.verify(Kind.CLICK, f"{body}.{mac}") is None


def test_truncated_oversized_and_garbage_tokens_are_refused() -> None:
    signer = TokenSigner([NEW_KEY])
    token = signer.sign(CLAIM)
    body, mac = token.split(".")
    refused = [
        "",
        ".",
        "..",
        token[:-1],
        token[:-4],
        body,
        f"{body}.",
        f".{mac}",
        f"{body}.{mac[:-3]}",  # a MAC cut short
        f"{body}.{_b64(_unb64(mac) + b'x')}",  # a MAC made longer
        f"{token}.{mac}",
        f"{body}.{mac}" + "A" * 400,
        "A" * 401,
        f"{body}{'A' * 400}.{mac}",
        "not-a-token",
        "ab!c.de#f",
        "é.é",
        "\x00.\x00",
        f"{mac}.{body}",
        f"{_b64(b'a|b|c|0')}.{_b64(bytes(16))}",
    ]
    for candidate in refused:
        assert signer.verify(Kind.CLICK, candidate) is None, candidate


def test_only_the_exact_token_string_verifies() -> None:
    signer = TokenSigner([NEW_KEY])
    token = signer.sign(CLAIM)
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
    accepted = [
        changed
        for i in range(len(token))
        if token[i] != "."
        for c in alphabet
        if c != token[i]
        and signer.verify(Kind.CLICK, changed := token[:i] + c + token[i + 1 :]) is not None
    ]
    assert accepted == []


def test_urls_name_the_kind_and_carry_the_token_under_the_base() -> None:
    signer = TokenSigner([NEW_KEY])
    base = "https://links.example.com"
    open_claim = Claim(Kind.OPEN, "acc_42", "env_01HZX", "cnt_01HZY")
    unsubscribe_claim = Claim(Kind.UNSUBSCRIBE, "acc_42", "env_01HZX", "cnt_01HZY")
    assert signer.url(base, open_claim) == f"{base}/t/o/{signer.sign(open_claim)}.gif"
    assert signer.url(base, CLAIM) == f"{base}/t/c/{signer.sign(CLAIM)}"
    assert signer.url(base, unsubscribe_claim) == f"{base}/t/u/{signer.sign(unsubscribe_claim)}"
    # A base with a path prefix keeps it.
    assert signer.url("https://example.com/mail", CLAIM).startswith("https://example.com/mail/t/c/")


def test_tokens_are_url_safe_and_the_url_token_verifies() -> None:
    signer = TokenSigner([NEW_KEY])
    for n in range(200):
        claim = Claim(Kind.CLICK, "acc_42", f"env_{n}", "cnt_01HZY", n)
        url = signer.url("https://links.example.com", claim)
        token = url.rsplit("/", 1)[1]
        assert set(token) <= set(
            "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_."
        )
        assert signer.verify(Kind.CLICK, token) == claim
