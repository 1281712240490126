"""Recipient and label checks of the send use case, and the keys its mail is signed with."""

from __future__ import annotations

import pytest

from postwire_common.errors import EmptyValue, InvalidEmail, InvalidValue, SizeExceeded
from postwire_ingest.sending import check_label, signing_keys, unique_recipients
from postwire_ingest.store import SenderRow


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        (["ann@example.org"], ["ann@example.org"]),
        (["ann@Example.ORG"], ["ann@example.org"]),
        (
            ["ann@example.org", "bob@example.net", "ann@example.org"],
            ["ann@example.org", "bob@example.net"],
        ),
        # duplicates differ only in case (and whitespace): the first spelling is kept
        (["Ann@example.org", "ANN@EXAMPLE.ORG", " ann@example.org "], ["Ann@example.org"]),
        (["bob@example.net", "ann@example.org"], ["bob@example.net", "ann@example.org"]),
        (["a@münchen.de", "a@xn--mnchen-3ya.de"], ["a@xn--mnchen-3ya.de"]),
    ],
)
def test_unique_recipients(given: list[str], expected: list[str]) -> None:
    assert [m.address for m in unique_recipients(given)] == expected


@pytest.mark.parametrize(
    ("given", "address", "name"),
    [
        ('"Zoë" <zoe@example.org>', "zoe@example.org", "Zoë"),
        ("Zoë <zoe@example.org>", "zoe@example.org", "Zoë"),
        ("Ann Lee <ann@Example.org>", "ann@example.org", "Ann Lee"),
        ('"Lee, Ann" <ann@example.org>', "ann@example.org", "Lee, Ann"),
        ("<ann@example.org>", "ann@example.org", ""),
    ],
)
def test_recipients_may_carry_a_display_name(given: str, address: str, name: str) -> None:
    [mailbox] = unique_recipients([given])
    assert (mailbox.address, mailbox.name) == (address, name)


def test_the_first_spelling_of_a_recipient_keeps_its_name() -> None:
    found = unique_recipients(["Ann <ann@example.org>", "ANN@example.org", "Bob <b@x.org>"])
    assert [(m.address, m.name) for m in found] == [("ann@example.org", "Ann"), ("b@x.org", "Bob")]


def test_up_to_100_recipients_are_accepted() -> None:
    addresses = [f"user{i}@example.org" for i in range(100)]
    assert [m.address for m in unique_recipients(addresses)] == addresses


def test_more_than_100_recipients_is_size_exceeded() -> None:
    with pytest.raises(SizeExceeded):
        unique_recipients([f"user{i}@example.org" for i in range(101)])


def test_no_recipient_is_empty_value() -> None:
    with pytest.raises(EmptyValue):
        unique_recipients([])


@pytest.mark.parametrize(
    "bad",
    [
        "not-an-address",
        "",
        "ann@example",
        "Ann <ann@example.org>, Bob <bob@example.org>",
        "ann@example.org\r\nBcc: x@y.org",
        "Ann\r\nBcc: x@y.org <ann@example.org>",
    ],
)
def test_an_invalid_recipient_is_invalid_email(bad: str) -> None:
    with pytest.raises(InvalidEmail):
        unique_recipients(["ok@example.org", bad])


@pytest.mark.parametrize(
    ("label", "expected"),
    [
        (None, None),
        ("", None),
        ("orders", "orders"),
        ("заказы-2024", "заказы-2024"),
        ("a" * 64, "a" * 64),
    ],
)
def test_check_label(label: str | None, expected: str | None) -> None:
    assert check_label(label) == expected


@pytest.mark.parametrize("label", ["a" * 65, "orders\r\nBcc: x@y.org", "orders\n", "nul\x00"])
def test_check_label_refuses(label: str) -> None:
    with pytest.raises(InvalidValue):
        check_label(label)


def test_mail_is_signed_with_the_rsa_key_then_the_ed25519_key_where_it_signs() -> None:
    rsa_only = SenderRow("a@shop.example", None, "shop.example", "usable", "pw202405", "fernet:r")
    assert [(k.domain, k.selector, k.private_key) for k in signing_keys(rsa_only)] == [
        ("shop.example", "pw202405", "fernet:r")
    ]
    both = SenderRow(
        "a@shop.example", None, "shop.example", "usable", "pw202405", "fernet:r",
        dkim_ed25519_selector="pw202405e", dkim_ed25519_private_key="fernet:e",
    )  # fmt: skip
    assert [(k.selector, k.private_key) for k in signing_keys(both)] == [
        ("pw202405", "fernet:r"),
        ("pw202405e", "fernet:e"),
    ]
