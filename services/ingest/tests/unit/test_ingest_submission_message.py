"""A submitted message is kept as sent, except for what must change."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from postwire_common.errors import InvalidValue
from postwire_ingest.submission.message import parse, split
from postwire_ingest.submission.throttle import LOCK_AFTER, Failures, delay_after

NOW = datetime(2026, 12, 1, 10, 0, tzinfo=UTC)


def submitted(data: bytes):  # type: ignore[no-untyped-def]
    return parse(data, "env@shop.example", NOW, "<new@shop.example>")


def test_headers_and_body_are_kept_byte_for_byte() -> None:
    data = (
        b"From: =?utf-8?b?0JzQsNCz0LDQt9C40L0=?= <news@shop.example>\r\nTo: a@x.org,\r\n"
        b" b@y.org\r\nSubject: =?utf-8?q?Caf=C3=A9?=\r\nDate: Mon, 30 Nov 2026 10:00:00 +0000\r\n"
        b"Message-ID: <m1@client>\r\nX-Custom:  spaced  \r\n\r\n\xd0\x9f\xd1\x80\xd0\xb8\r\n"
    )
    got = submitted(data)
    assert got.raw == data
    assert got.subject == "Café"
    assert got.authors == ("news@shop.example",)
    assert got.message_id == "<m1@client>"
    assert got.message_id_given


def test_bcc_and_trust_headers_are_dropped_missing_ones_added() -> None:
    data = (
        b"Bcc: hidden@x.org\r\nReturn-Path: <x@evil>\r\nX-Postwire-Env-Id: forged\r\n"
        b"Authentication-Results: mx; dkim=pass\r\nSubject: hi\r\n\r\nbody\r\n"
    )
    got = submitted(data)
    head, body = got.raw.split(b"\r\n\r\n", 1)
    assert head.split(b"\r\n") == [
        b"Subject: hi",
        b"From: env@shop.example",
        b"Date: Tue, 01 Dec 2026 10:00:00 +0000",
        b"Message-ID: <new@shop.example>",
    ]
    assert body == b"body\r\n"
    assert got.authors == ("env@shop.example",)
    assert not got.message_id_given


@pytest.mark.parametrize(
    "form", [b"\n.\n", b"\n.\r\n", b"\r.\r\n", b"\r\n.\r", b"\r.\r", b"\r\n.\n", b"\r"]
)
def test_bare_cr_and_lf_become_crlf(form: bytes) -> None:
    got = submitted(b"Subject: s\r\n\r\nfirst" + form + b"MAIL FROM:<x@y>\r\n")
    body = got.raw.split(b"\r\n\r\n", 1)[1]
    assert b"\r" not in body.replace(b"\r\n", b"")
    assert b"\n" not in body.replace(b"\r\n", b"")
    assert body.startswith(b"first\r\n")
    assert body.endswith(b"MAIL FROM:<x@y>\r\n")


def test_a_line_that_is_not_a_field_starts_the_body() -> None:
    fields, body = split(b"Subject: x\r\nnot a header line\r\nmore\r\n")
    assert fields == [b"Subject: x\r\n"]
    assert body == b"not a header line\r\nmore\r\n"
    assert split(b"hello\r\n") == ([], b"hello\r\n")
    assert split(b" continuation first\r\n") == ([], b" continuation first\r\n")
    got = submitted(b"hello world\r\n")
    assert got.raw.endswith(b"\r\n\r\nhello world\r\n")


def test_subject_control_characters_are_not_kept_in_details() -> None:
    got = submitted(b"Subject: =?utf-8?q?a=0D=0Ab?=\r\n\r\nx")
    assert got.subject == "a  b"


def test_wrong_guesses_are_answered_later_and_an_address_is_locked() -> None:
    assert [delay_after(n) for n in range(7)] == [0, 0.5, 1, 2, 4, 8, 8]
    assert Failures(by_address=0, by_user=3).delay == 2  # the user is slowed from anywhere
    assert Failures(by_address=3, by_user=0).delay == 2  # and the address for any user
    assert not Failures(by_address=LOCK_AFTER - 1, by_user=100).locked  # users never are
    assert Failures(by_address=LOCK_AFTER, by_user=0).locked


@pytest.mark.parametrize("value", [b"<a\x00b@x>", b"<a\x1bb@x>", b"<" + b"a" * 1000 + b"@x>"])
def test_a_message_id_that_cannot_be_stored_is_refused(value: bytes) -> None:
    with pytest.raises(InvalidValue, match="Message-ID"):
        submitted(b"Message-ID: " + value + b"\r\n\r\nbody")
