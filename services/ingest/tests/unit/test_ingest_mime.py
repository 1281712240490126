"""The MIME body writer: what a mail reader parses back is exactly what was given."""

from __future__ import annotations

import email
from dataclasses import dataclass
from email import policy
from email.message import EmailMessage

import pytest

from postwire_ingest import mime


@dataclass(frozen=True)
class File:
    filename: str
    data: bytes
    content_type: str


def parse(body: bytes) -> EmailMessage:
    message = email.message_from_bytes(b"Subject: t\r\n" + body, policy=policy.default)
    assert isinstance(message, EmailMessage)
    return message


def text_of(part: EmailMessage) -> str:
    return str(part.get_content()).replace("\r\n", "\n")


@pytest.mark.parametrize(
    "text",
    [
        "plain ascii\n",
        "Grüße aus Köln — 日本語\n",
        "x" * 5000 + "\n",  # longer than SMTP's 998-octet line limit
        "trailing spaces   \nand tabs\t\n",
        "=?utf-8?q?=0D=0A?= looks encoded\n",
        ".\nA line with only a dot, then one starting with one\n.dot\n",
        "--=_pw_deadbeef\n",
        "no final newline",
        "mixed\r\nline\rends\n",
    ],
)
def test_text_parses_back(text: str) -> None:
    body = mime.body(text, None, [])
    assert body.isascii()
    assert all(len(line) <= 998 for line in body.split(b"\r\n"))
    assert b"\n" not in body.replace(b"\r\n", b"")
    expected = text.replace("\r\n", "\n").replace("\r", "\n")
    if not expected.endswith("\n"):
        expected += "\n"
    assert text_of(parse(body)) == expected


def test_text_and_html_are_alternatives_in_order() -> None:
    message = parse(mime.body("hello\n", "<p>hello</p>\n", []))
    assert message.get_content_type() == "multipart/alternative"
    plain, html = message.iter_parts()
    assert (plain.get_content_type(), text_of(plain)) == ("text/plain", "hello\n")
    assert (html.get_content_type(), text_of(html)) == ("text/html", "<p>hello</p>\n")


@pytest.mark.parametrize(
    "filename",
    [
        "report.pdf",
        'quote"in.txt',
        "back\\slash.txt",
        "отчёт за ноябрь.pdf",
        "很长的文件名" * 20 + ".txt",  # continuations, none splitting a %XX escape
        "a" * 200 + ".bin",
    ],
)
def test_attachments_keep_their_name_and_exact_bytes(filename: str) -> None:
    data = bytes(range(256)) * 50
    body = mime.body("see attached\n", None, [File(filename, data, "application/pdf")])
    assert all(len(line) <= 998 for line in body.split(b"\r\n"))
    message = parse(body)
    assert message.get_content_type() == "multipart/mixed"
    text, attachment = message.iter_parts()
    assert text_of(text) == "see attached\n"
    assert attachment.get_filename() == filename
    assert attachment.get_content_type() == "application/pdf"
    assert attachment.get_content() == data


def test_text_html_and_attachments_nest_alternative_in_mixed() -> None:
    files = [File("a.txt", b"A", "text/plain"), File("b.png", b"\x89PNG", "image/png")]
    message = parse(mime.body("t\n", "<b>h</b>\n", files))
    alternative, first, second = message.iter_parts()
    assert alternative.get_content_type() == "multipart/alternative"
    assert [first.get_payload(decode=True), second.get_payload(decode=True)] == [b"A", b"\x89PNG"]


def test_boundaries_differ_between_messages() -> None:
    first = mime.body("t\n", "<b>h</b>\n", [])
    second = mime.body("t\n", "<b>h</b>\n", [])
    assert first != second
