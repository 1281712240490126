"""Address syntax and header-value checks shared by the HTTP API and SMTP."""

from __future__ import annotations

import pytest
from email_validator import EmailNotValidError, validate_email

from postwire_common.addresses import (
    Mailbox,
    check_header_value,
    normalize_address,
    parse_mailbox,
)
from postwire_common.errors import InvalidEmail, InvalidValue


@pytest.mark.parametrize(
    ("given", "canonical"),
    [
        ("ann@example.org", "ann@example.org"),
        ("ann@Example.ORG", "ann@example.org"),
        ("  ann@example.org  ", "ann@example.org"),
        # the local part is case-sensitive (RFC 5321), only the domain is folded
        ("Ann.Lee+tag@EXAMPLE.org", "Ann.Lee+tag@example.org"),
        ("ann@mail.sub.example.co.uk", "ann@mail.sub.example.co.uk"),
        # IDN domains are IDNA-encoded so that a non-SMTPUTF8 server can carry them
        ("ann@münchen.de", "ann@xn--mnchen-3ya.de"),
        ("ann@MÜNCHEN.DE", "ann@xn--mnchen-3ya.de"),
        ("ann@例え.テスト", "ann@xn--r8jz45g.xn--zckzah"),
        ("ann@xn--mnchen-3ya.de", "ann@xn--mnchen-3ya.de"),
    ],
)
def test_normalize_address(given: str, canonical: str) -> None:
    assert normalize_address(given) == canonical


@pytest.mark.parametrize(
    "given",
    [
        "",
        "   ",
        "ann",
        "ann@",
        "@example.org",
        "ann@example",
        "ann@@example.org",
        "a b@example.org",
        "a..b@example.org",
        ".ann@example.org",
        "ann@-example.org",
        "ann@exa_mple.org",
        "ann@[192.0.2.1]",  # domain literals are not accepted
        '"a b"@example.org',  # nor quoted local parts
        "ünï@example.org",  # a non-ASCII local part needs SMTPUTF8
        "ann@example.org, bob@example.org",
        "Ann <ann@example.org>",  # a bare address only
    ],
)
def test_normalize_address_refuses_invalid_syntax(given: str) -> None:
    with pytest.raises(InvalidEmail):
        normalize_address(given)


@pytest.mark.parametrize(
    "given",
    [
        "ann@example.org\r\nBcc: victim@example.net",
        "ann@example.org\n",
        "ann@example.org\r",
        "ann\x00@example.org",
        "ann@example.org\x1b",
        "ann@exam\x7fple.org",
    ],
)
def test_normalize_address_refuses_control_characters(given: str) -> None:
    with pytest.raises(InvalidEmail):
        normalize_address(given)


def test_normalize_address_names_the_field_in_the_error() -> None:
    with pytest.raises(InvalidEmail, match="recipient"):
        normalize_address("nope", field="recipient")


@pytest.mark.parametrize(
    ("given", "address", "name"),
    [
        ("ann@example.org", "ann@example.org", ""),
        ("<ann@example.org>", "ann@example.org", ""),
        ("Ann <ann@example.org>", "ann@example.org", "Ann"),
        ("Ann Lee <ann@Example.ORG>", "ann@example.org", "Ann Lee"),
        ("  Ann   <ann@example.org>  ", "ann@example.org", "Ann"),
        ('"Lee, Ann" <ann@example.org>', "ann@example.org", "Lee, Ann"),
        ('"Ann" <ann@example.org>', "ann@example.org", "Ann"),
        ('"Ann \\"The Boss\\" Lee" <ann@example.org>', "ann@example.org", 'Ann "The Boss" Lee'),
        ("Müller Straße <ann@example.org>", "ann@example.org", "Müller Straße"),
        ("商店 <shop@例え.テスト>", "shop@xn--r8jz45g.xn--zckzah", "商店"),
    ],
)
def test_parse_mailbox(given: str, address: str, name: str) -> None:
    assert parse_mailbox(given) == Mailbox(address, name)


def test_mailbox_domain_is_the_part_after_the_at_sign() -> None:
    assert parse_mailbox("Ann <ann@Mail.Example.org>").domain == "mail.example.org"


@pytest.mark.parametrize(
    "given",
    ["", "  ", "Ann <>", "Ann <not-an-address>", "Ann <ann@example>", "Ann <ann@example.org"],
)
def test_parse_mailbox_refuses_bad_addresses(given: str) -> None:
    with pytest.raises(InvalidEmail):
        parse_mailbox(given)


@pytest.mark.parametrize(
    "given",
    [
        "Ann\r\nBcc: victim@example.net <ann@example.org>",
        "Ann\nBcc: victim@example.net <ann@example.org>",
        "Ann <ann@example.org>\r\nBcc: victim@example.net",
        '"Ann\r\nBcc: victim@example.net" <ann@example.org>',
        "Ann\x00 <ann@example.org>",
    ],
)
def test_parse_mailbox_refuses_header_injection(given: str) -> None:
    with pytest.raises(InvalidValue):
        parse_mailbox(given)


def test_parse_mailbox_refuses_overlong_display_name() -> None:
    with pytest.raises(InvalidValue):
        parse_mailbox(f"{'A' * 201} <ann@example.org>")


@pytest.mark.parametrize(
    "value",
    ["plain", "", "tab\tseparated", "Grüße 漢字 🙂"],
)
def test_check_header_value_allows_tabs_and_unicode(value: str) -> None:
    assert check_header_value("subject", value) == value


@pytest.mark.parametrize(
    "value",
    [
        "Hi\r\nBcc: victim@example.net",
        "Hi\nBcc: victim@example.net",
        "Hi\rBcc: victim@example.net",
        "trailing newline\n",
        "a\u2028b (Unicode line separator)",
        "a\u2029b (Unicode paragraph separator)",
        "a\x85b (next line, NEL)",
        "nul\x00",
        "bell\x07",
        "vertical tab\x0b",
        "form feed\x0c",
        "escape\x1b[31m",
        "delete\x7f",
    ],
)
def test_check_header_value_refuses_line_breaks_and_control_characters(value: str) -> None:
    with pytest.raises(InvalidValue, match="subject"):
        check_header_value("subject", value)


FAST_PATH_CASES = [
    "a@b.com", "A.B@Example.ORG", "a..b@x.org", ".a@x.org", "a.@x.org", "a@localhost",
    "a@x.test", "a@x.local", "a@münchen.de", "ü@x.org", '"q"@x.org', "a@[1.2.3.4]",
    "a@-x.org", "a@x-.org", "a@x..org", "a@x.org.", "a@1.2.3.4", "a@x.123",
    "x" * 64 + "@x.org", "x" * 65 + "@x.org", "a@" + "b" * 63 + ".org", "a@" + "b" * 64 + ".org",
    "a" * 64 + "@" + ".".join(["b" * 60] * 3) + ".org",
    "a" * 60 + "@" + ".".join(["b" * 62] * 3) + ".com", "a@@x.org", "a@x_y.org",
    "a+tag@x.org", "o'brien@x.org", "a{b}@x.org", "a@x.org ", "a@ex ample.org",
    "a@xn--mnchen-3ya.de", "a@XN--MNCHEN-3YA.DE", "a@x.onion", "a@x.arpa", "a@x.invalid",
    "a@com", "a@x.c", "a@sub.example", "a/b@x.org", "a@x.org@y.org", "@x.org", "a@",
    "a b@x.org", "a@x.o-rg", "a@x.-org", "a@ü.com", "a@\u00adx.org", "a@x\u200b.org",
]  # fmt: skip


@pytest.mark.parametrize("value", FAST_PATH_CASES)
def test_the_fast_path_answers_as_email_validator_does(value: str) -> None:
    """Common addresses skip validate_email (with their domain's check cached): the
    answer must be the same, valid or not, at every edge of the syntax and lengths."""
    try:
        full = validate_email(
            value.strip(), check_deliverability=False, allow_smtputf8=False,
            allow_quoted_local=False, allow_domain_literal=False,
        )  # fmt: skip
        expected: str | None = f"{full.local_part}@{full.ascii_domain.lower()}"
    except EmailNotValidError:
        expected = None
    try:
        found: str | None = normalize_address(value)
    except InvalidEmail:
        found = None
    assert found == expected
