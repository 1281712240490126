"""Composing RFC 5322 mail from a send request (compose.prepare + content.render)."""

from __future__ import annotations

import base64
import email
import re
from datetime import UTC, datetime
from email import policy
from email.message import EmailMessage
from email.utils import parsedate_to_datetime

import pytest

from postwire_common.addresses import Mailbox
from postwire_common.content import render as render_copy
from postwire_common.errors import EmptyValue, InvalidValue, SizeExceeded
from postwire_ingest import compose
from postwire_ingest.compose import Attachment, Content, decode_attachment, prepare

NOW = datetime(2024, 5, 6, 7, 8, 9, tzinfo=UTC)
SENDER = Mailbox("news@shop.example", "Shop")
RCPT = "ann@example.org"
MSG_ID = "<01HXYZ@shop.example>"
ENV_ID = "01HXYZENV"
BARE_CR_OR_LF = re.compile(r"\r(?!\n)|(?<!\r)\n")

# The seed's list of forbidden extensions (Devino), copied from the seed text.
SEED_FORBIDDEN = (
    ".adp .bat .chm .cmd .com .cpl .exe .hta .ins .isp .jar .js .jse .lib .lnk .mde .msc "
    ".msp .mst .pif .scr .sct .shb .sys .vb .vbe .vbs .vxd .wsc .wsf .wsh"
)
DEVINO_FORBIDDEN = SEED_FORBIDDEN.split()


def render(content: Content, sender: Mailbox = SENDER, rcpt: str = RCPT) -> str:
    return render_copy(prepare(sender, content, NOW), rcpt, MSG_ID, ENV_ID).decode("ascii")


def parse(raw: str) -> EmailMessage:
    message = email.message_from_bytes(raw.encode("ascii"), policy=policy.default)
    assert isinstance(message, EmailMessage)
    return message


def unix_lines(text: str) -> str:
    return text.replace("\r\n", "\n")


def body_text(message: EmailMessage, subtype: str) -> str:
    part = message.get_body((subtype,))
    assert part is not None, f"no text/{subtype} part"
    return unix_lines(part.get_content())


# -- the wire format -----------------------------------------------------------------

WIRE_CASES = {
    "ascii": Content(subject="Your order", text="Thanks for your order.\n"),
    "non-ascii": Content(
        subject="Ваш заказ № 42 — Grüße 🙂", text="Привет, Ann!\nЗаказ готов.\n", html="<p>日本</p>"
    ),
    "html only": Content(subject="Hi", html="<p>Hello</p>\n<p>again</p>"),
    "bare line ends": Content(
        subject="Hi", text="one\rtwo\nthree\r\n.\nfour\n.\r\nfive\r", html="<p>a\rb\nc</p>"
    ),
    "smuggling dots": Content(subject="Hi", text="a\n.\nb\r\n.\r\nc\r.\rd\n\r.\r\ne"),
    "long lines": Content(
        subject="x" * 900, text="y" * 5000 + "\n" + "é" * 3000, html="<p>" + "z " * 3000 + "</p>"
    ),
    "attachments": Content(
        subject="Invoice",
        text="See attached.",
        attachments=(
            Attachment("invoice.pdf", bytes(range(256)) * 40, "application/pdf"),
            Attachment("notes.txt", b"line one\nline two\r\nline three\r", "text/plain"),
        ),
    ),
    "custom headers": Content(
        subject="Hi", text="x", headers={"X-Order": "42", "X-Note": "naïve café " * 20}
    ),
}


@pytest.mark.parametrize("content", WIRE_CASES.values(), ids=WIRE_CASES.keys())
def test_output_is_ascii_with_crlf_line_ends_only(content: Content) -> None:
    raw = render(content, Mailbox("news@shop.example", "Müller, Ann"))
    assert raw.isascii()
    assert BARE_CR_OR_LF.search(raw) is None
    assert raw.endswith("\r\n")


@pytest.mark.parametrize("content", WIRE_CASES.values(), ids=WIRE_CASES.keys())
def test_no_line_is_longer_than_rfc_5322_allows(content: Content) -> None:
    raw = render(content)
    assert max(len(line) for line in raw.split("\r\n")) <= 998


@pytest.mark.parametrize("content", WIRE_CASES.values(), ids=WIRE_CASES.keys())
def test_headers_are_separated_from_the_body(content: Content) -> None:
    raw = render(content)
    head = raw.split("\r\n\r\n", 1)[0]
    names = [line.split(":", 1)[0].lower() for line in head.split("\r\n") if line[:1] not in " \t"]
    for name in ("from", "to", "subject", "date", "message-id", "mime-version", "content-type"):
        assert names.count(name) == 1, name


# -- parsing back --------------------------------------------------------------------


@pytest.mark.parametrize(
    "name",
    ["Shop", "Müller, Ann", "Lee, Ann", 'Ann "The Boss" Lee', "商店 (Tokyo)", "Ann; Bob", ""],
)
def test_from_parses_back(name: str) -> None:
    message = parse(render(Content(subject="Hi", text="x"), Mailbox("news@shop.example", name)))
    [address] = message["From"].addresses
    assert address.addr_spec == "news@shop.example"
    assert address.display_name == name


@pytest.mark.parametrize(
    "subject",
    [
        "Your order",
        "Grüße aus München 🙂",
        "Ваш заказ готов",
        "注文が発送されました",
        pytest.param("Long " * 150, id="long-ascii"),
        pytest.param("Длинная тема письма " * 40, id="long-cyrillic"),
        pytest.param("Grüße aus München " * 30, id="long-latin1"),
        pytest.param("a" * 500, id="long-word"),
        "trailing space ",
        "tab\tinside",
        "=?utf-8?q?hi?=",
    ],
)
def test_subject_parses_back(subject: str) -> None:
    assert parse(render(Content(subject=subject, text="x")))["Subject"] == subject


def test_recipient_headers_parse_back() -> None:
    message = parse(render(Content(subject="Hi", text="x")))
    assert message["To"] == RCPT
    assert message["Message-ID"] == MSG_ID
    assert message["X-Postwire-Env-Id"] == ENV_ID
    assert parsedate_to_datetime(message["Date"]) == NOW


def test_one_prepared_mail_renders_for_many_recipients() -> None:
    prepared = prepare(SENDER, Content(subject="Hi", text="Hello\n"), NOW)
    first = parse(render_copy(prepared, "ann@example.org", "<1@shop.example>", "E1").decode())
    second = parse(render_copy(prepared, "bob@example.net", "<2@shop.example>", "E2").decode())
    assert (first["To"], first["Message-ID"]) == ("ann@example.org", "<1@shop.example>")
    assert (second["To"], second["Message-ID"]) == ("bob@example.net", "<2@shop.example>")
    assert body_text(first, "plain") == body_text(second, "plain") == "Hello\n"


@pytest.mark.parametrize(
    "text",
    [
        "plain ascii\n",
        "Привет, мир!\nВторая строка\n",
        "y" * 5000 + "\n",
        "é" * 3000 + "\n",
        "line\n.\nend\n",
        "From the start\n",
        "trailing space \nnext\n",
    ],
)
def test_text_body_parses_back(text: str) -> None:
    message = parse(render(Content(subject="Hi", text=text)))
    assert body_text(message, "plain") == text


def test_text_and_html_bodies_parse_back() -> None:
    text, html = "Hello Ann\nYour order shipped.\n", "<p>Hello <b>Ann</b> — 日本</p>\n"
    message = parse(render(Content(subject="Hi", text=text, html=html)))
    assert message.get_content_type() == "multipart/alternative"
    assert body_text(message, "plain") == text
    assert body_text(message, "html") == html


def test_html_only_body_parses_back() -> None:
    html = "<p>Only HTML — ünïcödé</p>\n"
    message = parse(render(Content(subject="Hi", html=html)))
    assert body_text(message, "html") == html
    assert message.get_body(("plain",)) is None


def test_attachments_parse_back() -> None:
    pdf = bytes(range(256)) * 50
    png = b"\x89PNG\r\n\x1a\n" + bytes(1000)
    content = Content(
        subject="Invoice",
        text="See attached.\n",
        html="<p>See attached.</p>\n",
        attachments=(
            Attachment("invoice.pdf", pdf, "application/pdf"),
            Attachment("résumé 2024.png", png, "image/png"),
        ),
    )
    message = parse(render(content))
    found = [
        (part.get_filename(), part.get_content_type(), part.get_content())
        for part in message.iter_attachments()
    ]
    assert found == [
        ("invoice.pdf", "application/pdf", pdf),
        ("résumé 2024.png", "image/png", png),
    ]
    assert body_text(message, "plain") == "See attached.\n"
    assert body_text(message, "html") == "<p>See attached.</p>\n"


def test_custom_headers_parse_back() -> None:
    headers = {"X-Order": "42", "X-Note": "naïve café", "List-Id": "<orders.shop.example>"}
    message = parse(render(Content(subject="Hi", text="x", headers=headers)))
    for name, value in headers.items():
        assert message[name] == value


@pytest.mark.parametrize("separator", ["\u2028", "\u2029", "\x85"])
@pytest.mark.parametrize("where", ["subject", "header", "display name"])
def test_unicode_line_separators_are_refused(separator: str, where: str) -> None:
    # Some readers break lines at NEL/LS/PS; no subject or name needs them.
    injected = f"Hi{separator}Bcc: victim@example.net"
    content = Content(
        subject=injected if where == "subject" else "Hi",
        text="x",
        headers={"X-Note": injected} if where == "header" else {},
    )
    name = injected if where == "display name" else ""
    with pytest.raises(InvalidValue):
        render(content, Mailbox("news@shop.example", name))


# -- header injection ------------------------------------------------------------------

INJECTIONS = [
    "Hi\r\nBcc: victim@example.org",
    "Hi\nBcc: victim@example.org",
    "Hi\rBcc: victim@example.org",
    "Hi\r\n\r\n<html>new body</html>",
    "Hi\x00",
]


@pytest.fixture
def nothing_built(monkeypatch: pytest.MonkeyPatch) -> None:
    """Fail the test if prepare() starts building a message."""

    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("the message was built before the input was checked")

    monkeypatch.setattr(compose.mime, "body", refuse)


@pytest.mark.usefixtures("nothing_built")
@pytest.mark.parametrize("subject", INJECTIONS)
def test_subject_with_line_breaks_is_refused_before_anything_is_built(subject: str) -> None:
    with pytest.raises(InvalidValue):
        prepare(SENDER, Content(subject=subject, text="x"), NOW)


@pytest.mark.usefixtures("nothing_built")
@pytest.mark.parametrize("value", INJECTIONS)
def test_custom_header_value_with_line_breaks_is_refused_before_anything_is_built(
    value: str,
) -> None:
    with pytest.raises(InvalidValue):
        prepare(SENDER, Content(subject="Hi", text="x", headers={"X-Order": value}), NOW)


@pytest.mark.parametrize("name", INJECTIONS)
def test_display_name_with_line_breaks_is_refused(name: str) -> None:
    with pytest.raises(InvalidValue):
        prepare(Mailbox("news@shop.example", name), Content(subject="Hi", text="x"), NOW)


# RFC 2047 encoded words that decode to CR/LF: the text has no raw line break, so
# check_header_value passes it; the output must still carry no new header line.
ENCODED_INJECTIONS = [
    "=?utf-8?q?Hi=0D=0ABcc:_victim@example.org?=",
    "=?utf-8?b?SGkNCkJjYzogdmljdGltQGV4YW1wbGUub3Jn?=",  # the same in base64
    "=?utf-8?q?Hi=0ABcc:_victim@example.org?=",
    "=?utf-8?q?Hi=0A.=0D=0A?=",
]


def assert_no_injected_header(raw: str) -> None:
    assert BARE_CR_OR_LF.search(raw) is None
    message = parse(raw)
    assert message["Bcc"] is None
    assert len(message.get_all("Subject") or []) == 1
    assert message.get_body(("plain",)) is not None


@pytest.mark.parametrize("value", ENCODED_INJECTIONS)
def test_encoded_word_in_subject_cannot_inject_headers(value: str) -> None:
    try:
        raw = render(Content(subject=value, text="x"))
    except InvalidValue:
        return  # refusing it is fine too
    assert_no_injected_header(raw)


@pytest.mark.parametrize("value", ENCODED_INJECTIONS)
def test_encoded_word_in_custom_header_cannot_inject_headers(value: str) -> None:
    try:
        raw = render(Content(subject="Hi", text="x", headers={"X-Note": value}))
    except InvalidValue:
        return
    assert_no_injected_header(raw)


@pytest.mark.parametrize("value", ENCODED_INJECTIONS)
def test_encoded_word_in_display_name_is_refused_or_harmless(value: str) -> None:
    try:
        raw = render(Content(subject="Hi", text="x"), Mailbox("news@shop.example", value))
    except InvalidValue:
        return
    assert_no_injected_header(raw)


@pytest.mark.parametrize(
    "name",
    [
        "From", "from", "TO", "Cc", "bcc", "Subject", "DATE", "Message-ID", "message-id",
        "MIME-Version", "Content-Type", "content-type", "Content-Transfer-Encoding",
        "Content-Disposition", "Content-ID", "Return-Path", "Received", "DKIM-Signature",
        "dkim-signature", "Sender", "X-Postwire-Env-Id", "x-postwire-env-id",
    ],
)  # fmt: skip
def test_reserved_headers_are_refused_as_custom_headers(name: str) -> None:
    with pytest.raises(InvalidValue):
        prepare(SENDER, Content(subject="Hi", text="x", headers={name: "value"}), NOW)


@pytest.mark.parametrize(
    "name",
    [
        "",
        "X Order",
        "X:Order",
        "X-Ørder",
        "X\tOrder",
        "X-Order\r\nBcc",
        "X-Order\n",
        "\nX-Order",
        "X-Order\r",
        "a" * 77,
    ],
)
def test_bad_header_names_are_refused(name: str) -> None:
    with pytest.raises(InvalidValue):
        prepare(SENDER, Content(subject="Hi", text="x", headers={name: "value"}), NOW)


@pytest.mark.parametrize("name", ["X-Order", "X-Campaign_ID.2", "List-Id", "X-" + "a" * 40])
def test_good_header_names_are_accepted(name: str) -> None:
    message = parse(render(Content(subject="Hi", text="x", headers={name: "v"})))
    assert message[name] == "v"


def test_a_header_given_twice_in_different_case_is_refused() -> None:
    with pytest.raises(InvalidValue):
        prepare(SENDER, Content(subject="Hi", text="x", headers={"X-A": "1", "x-a": "2"}), NOW)


def test_too_many_custom_headers_are_refused() -> None:
    headers = {f"X-H{i}": "v" for i in range(51)}
    with pytest.raises(InvalidValue):
        prepare(SENDER, Content(subject="Hi", text="x", headers=headers), NOW)


# -- required parts and limits ---------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "html"), [(None, None), ("", None), (None, ""), ("", "")], ids=str
)
def test_empty_body_is_empty_value(text: str | None, html: str | None) -> None:
    with pytest.raises(EmptyValue):
        prepare(SENDER, Content(subject="Hi", text=text, html=html), NOW)


@pytest.mark.parametrize("subject", ["", " ", "\t "])
def test_empty_subject_is_empty_value(subject: str) -> None:
    with pytest.raises(EmptyValue):
        prepare(SENDER, Content(subject=subject, text="x"), NOW)


def test_overlong_subject_is_refused() -> None:
    with pytest.raises(InvalidValue):
        prepare(SENDER, Content(subject="x" * 999, text="x"), NOW)


def test_message_over_10_mb_is_size_exceeded() -> None:
    big = Attachment("big.bin", bytes(8 * 1024 * 1024), "application/octet-stream")
    with pytest.raises(SizeExceeded):
        prepare(SENDER, Content(subject="Hi", text="x", attachments=(big,)), NOW)


def test_text_over_10_mb_is_size_exceeded() -> None:
    with pytest.raises(SizeExceeded):
        prepare(SENDER, Content(subject="Hi", text="word " * (2_200_000)), NOW)


def test_message_under_10_mb_is_accepted() -> None:
    data = bytes(range(256)) * (6 * 1024 * 4)  # 6 MiB
    raw = render(
        Content(
            subject="Hi",
            text="x",
            attachments=(Attachment("six.bin", data, "application/octet-stream"),),
        )
    )
    [part] = parse(raw).iter_attachments()
    assert part.get_content() == data


# -- decode_attachment -----------------------------------------------------------------


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


@pytest.mark.parametrize("extension", DEVINO_FORBIDDEN)
def test_forbidden_extensions_are_refused_with_the_seed_text(extension: str) -> None:
    with pytest.raises(InvalidValue) as caught:
        decode_attachment(f"file{extension}", b64(b"MZ"), "application/octet-stream")
    assert caught.value.description == f"Not allowed attachement type {extension}"


@pytest.mark.parametrize(
    "filename",
    ["VIRUS.EXE", "virus.Exe", "Setup.eXe", "report.pdf.exe", "a.b.c.EXE", "résumé.exe"],
)
def test_forbidden_extension_check_ignores_case_and_inner_dots(filename: str) -> None:
    with pytest.raises(InvalidValue) as caught:
        decode_attachment(filename, b64(b"MZ"), None)
    assert caught.value.description == "Not allowed attachement type .exe"


@pytest.mark.parametrize("filename", ["virus.exe.", "virus.exe ", "virus.exe. . "])
def test_forbidden_extension_cannot_hide_behind_trailing_dots_or_spaces(filename: str) -> None:
    # Windows drops trailing dots and spaces: "virus.exe." is saved as "virus.exe".
    with pytest.raises(InvalidValue):
        decode_attachment(filename, b64(b"MZ"), None)


@pytest.mark.parametrize(
    ("filename", "content_type", "kind"),
    [
        ("invoice.pdf", "application/pdf", "application/pdf"),
        ("photo.JPG", "Image/JPEG", "image/jpeg"),
        ("README", None, "application/octet-stream"),
        ("archive.tar.gz", "application/gzip", "application/gzip"),
        ("exe", "text/plain", "text/plain"),
        ("report.exe.pdf", "application/pdf", "application/pdf"),
        ("data.json", "application/vnd.api+json", "application/vnd.api+json"),
    ],
)
def test_allowed_attachments_are_decoded(
    filename: str, content_type: str | None, kind: str
) -> None:
    data = b"%PDF-1.4\x00\xff\x10 binary"
    attachment = decode_attachment(filename, b64(data), content_type)
    assert attachment == Attachment(filename, data, kind)


@pytest.mark.parametrize("content", ["not base64!!", "YWJj!", "YWJjZA", "YW Jj\x00"])
def test_invalid_base64_is_refused(content: str) -> None:
    with pytest.raises(InvalidValue):
        decode_attachment("a.pdf", content, "application/pdf")


@pytest.mark.parametrize(
    "content_type",
    ["pdf", "application/", "/pdf", "application/pdf extra", "text/plain\r\nBcc: x@y.org", "a/b/c"],
)
def test_bad_mime_type_is_refused(content_type: str) -> None:
    with pytest.raises(InvalidValue):
        decode_attachment("a.pdf", b64(b"x"), content_type)


@pytest.mark.parametrize("filename", ["", "   "])
def test_attachment_needs_a_filename(filename: str) -> None:
    with pytest.raises(EmptyValue):
        decode_attachment(filename, b64(b"x"), "text/plain")


@pytest.mark.parametrize("filename", ["a\r\nb.pdf", "a\nContent-Type: text/html.pdf", "a\x00.pdf"])
def test_attachment_filename_with_control_characters_is_refused(filename: str) -> None:
    with pytest.raises(InvalidValue):
        decode_attachment(filename, b64(b"x"), "application/pdf")
