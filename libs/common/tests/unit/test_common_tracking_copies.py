"""Each recipient's tracked copy, for composed content (HTTP) and content as sent (SMTP
submission): the pixel once per HTML body, every tracked link a click URL whose token
names its number, the unsubscribe link where the sender's ``[Unsubscribe]`` tag was or in
a footer, List-Unsubscribe and List-Unsubscribe-Post exactly when a copy has that link;
everything else as it was (attachments byte for byte, the HTML but for what was
replaced), and a message that parses, keeps SMTP's line rules and verifies after DKIM."""

from __future__ import annotations

import base64
import email
import email.policy
import re
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from email.message import Message

import dkim
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from postwire_common.addresses import Mailbox
from postwire_common.content import StoredContent, render
from postwire_common.tracking.choice import Tracking
from postwire_common.tracking.copies import (
    FOOTER_HTML,
    FOOTER_TEXT,
    PIXEL_HTML,
    Copy,
    Prepared,
    clicked_url,
    prepare,
    render_copy,
    tracked_urls,
)
from postwire_common.tracking.html import find_links
from postwire_common.tracking.tokens import Claim, Kind, TokenSigner, link_check
from postwire_ingest import compose

SIGNER = TokenSigner([b"k" * 32])
BASE = "https://links.example.com"
TENANT, CONTENT_ID = "acc_1", "cnt_1"
NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
SENDER = Mailbox("news@example.com", "News")
URL = re.compile(
    re.escape(BASE) + r"/t/(?P<kind>[ocu])/(?P<token>[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+)(?:\.gif)?"
)
ALL = Tracking(opens=True, clicks=True, unsubscribe=True, base=BASE)

HTML = (
    "<!DOCTYPE html>\n<html><head><title>Новости</title></head>\n<body>\n"
    "<h1>Привет, 世界</h1>\n"
    '<p><a href="https://shop.example/sale?a=1&amp;b=2">Sale</a> and '
    "<A HREF='https://shop.example/blog'>blog</A>.</p>\n"
    '<p><a href="mailto:help@example.com">help</a> '
    '<a href="/relative">relative</a></p>\n'
    '<!-- <a href="https://comment.example/">old</a> -->\n'
    "</body>\n</html>\n"
)
HTML_URLS = ["https://shop.example/sale?a=1&b=2", "https://shop.example/blog"]
TEXT = "Привет!\nSale: https://shop.example/sale\n"


# -- building contents ----------------------------------------------------------------


def composed(
    tracking: Tracking | None = ALL,
    *,
    text: str | None = TEXT,
    html: str | None = HTML,
    attachments: tuple[compose.Attachment, ...] = (),
    headers: dict[str, str] | None = None,
) -> StoredContent:
    content = compose.Content(
        "Новости недели", text=text, html=html, attachments=attachments, headers=headers or {}
    )
    stored = compose.prepare(SENDER, content, NOW)
    return StoredContent(stored.head, stored.body, tracking.to_json() if tracking else None)


def as_sent(raw: bytes, tracking: Tracking | None = ALL) -> StoredContent:
    return StoredContent(b"", raw, tracking.to_json() if tracking else None)


def copy_of(content: StoredContent, env_id: str = "env_1") -> tuple[Copy, bytes]:
    copy = render_copy(prepare(content), SIGNER, TENANT, env_id, CONTENT_ID)
    return copy, rendered(content, copy, env_id)


def rendered(content: StoredContent, copy: Copy, env_id: str = "env_1") -> bytes:
    return render(
        content,
        "rcpt@example.org",
        "<m1@example.com>",
        env_id,
        body=copy.body,
        extra=copy.headers,
    )


# -- reading copies ---------------------------------------------------------------------


def parse(raw: bytes) -> Message:
    return email.message_from_bytes(raw, policy=email.policy.compat32)


def leaves(message: Message) -> Iterator[Message]:
    """Leaf parts, not looking inside attached messages."""
    if message.get_content_maintype() == "message":
        yield message
        return
    if not message.is_multipart():
        yield message
        return
    for part in message.get_payload():
        assert isinstance(part, Message)
        yield from leaves(part)


def decoded(part: Message) -> str:
    payload = part.get_payload(decode=True)
    assert isinstance(payload, bytes)
    return payload.decode(part.get_content_charset() or "us-ascii")


def inline(raw: bytes, subtype: str) -> list[str]:
    """The decoded inline ``text/<subtype>`` bodies of a message."""
    return [
        decoded(part)
        for part in leaves(parse(raw))
        if part.get_content_type() == f"text/{subtype}"
        and not (part.get("Content-Disposition") or "").startswith("attachment")
    ]


def urls(text: str) -> list[tuple[Kind, Claim]]:
    """The tracking URLs of ``text`` as verified claims, in order."""
    found = []
    for match in URL.finditer(text):
        kind = Kind(match["kind"])
        claim = SIGNER.verify(kind, match["token"])
        assert claim is not None, match[0]
        found.append((kind, claim))
    return found


def placeholders(text: str) -> str:
    """``text`` with each tracking URL as ``{open}``, ``{click N}`` or ``{unsubscribe}``."""

    def name(match: re.Match[str]) -> str:
        kind = Kind(match["kind"])
        claim = SIGNER.verify(kind, match["token"])
        assert claim is not None
        return f"{{click {claim.n}}}" if kind is Kind.CLICK else f"{{{kind.name.lower()}}}"

    return URL.sub(name, text)


def expected_html(original: str, tracking: Tracking, *, first_link: int = 0) -> str:
    """What the copy of the HTML ``original`` must decode to, with placeholders."""
    out, at, n = [], 0, first_link
    tagged = "[unsubscribe]" in original.lower()
    spans: list[tuple[int, int, str]] = []
    if tracking.clicks:
        for link in find_links(original):
            spans.append((link.start, link.end, f"{{click {n}}}"))
            n += 1
    spans += [
        (m.start(), m.end(), "{unsubscribe}")
        for m in re.finditer(r"\[unsubscribe\]", original, re.IGNORECASE)
    ]
    for start, end, value in sorted(spans):
        out += [original[at:start], value]
        at = end
    text = "".join([*out, original[at:]])
    tail = ""
    if tracking.unsubscribe and not tagged:
        tail += FOOTER_HTML.format(url="{unsubscribe}")
    if tracking.opens:
        tail += PIXEL_HTML.format(url="{open}")
    close = text.lower().rfind("</body>")
    if close == -1:
        close = len(text.rstrip("\r\n"))
    return text[:close] + tail + text[close:]


def assert_smtp_safe(raw: bytes) -> None:
    """CRLF line ends only, every line within 998 bytes, a parse without defects."""
    assert raw.endswith(b"\r\n")
    lines = raw.split(b"\r\n")
    assert not any(b"\r" in line or b"\n" in line for line in lines)
    assert max(len(line) for line in lines) <= 998
    message = email.message_from_bytes(raw, policy=email.policy.default)
    for part in message.walk():
        assert not part.defects, (part.get_content_type(), part.defects)


def first_token(text: str, kind: Kind) -> str:
    for match in URL.finditer(text):
        if match["kind"] == kind.value:
            return match["token"]
    raise AssertionError(f"no {kind.name} URL")


# -- composed content -----------------------------------------------------------------


def test_composed_alternative_gets_pixel_links_and_footer_and_nothing_else() -> None:
    content = composed()
    copy, raw = copy_of(content)
    assert_smtp_safe(raw)
    assert copy.body == raw.split(b"X-Postwire-Env-Id: env_1\r\n" + copy.headers, 1)[1]
    [html] = inline(raw, "html")
    [original_html] = inline(content.body, "html")
    assert placeholders(html) == expected_html(original_html, ALL)
    assert html.count("<img ") == 1
    assert html.index(PIXEL_HTML.split("{url}")[0]) < html.rindex("</body>")
    assert 'href="mailto:help@example.com"' in html
    assert 'href="/relative"' in html
    assert 'href="https://comment.example/"' in html  # in a comment: not a link
    [text] = inline(raw, "plain")
    [original_text] = inline(content.body, "plain")
    assert placeholders(text) == original_text + FOOTER_TEXT.format(url="{unsubscribe}").replace(
        "\n", "\r\n"
    )


def test_each_click_token_names_its_link_and_events_finds_the_same_url() -> None:
    content = composed()
    _, raw = copy_of(content, "env_7")
    [html] = inline(raw, "html")
    clicks = [claim for kind, claim in urls(html) if kind is Kind.CLICK]
    assert [claim.n for claim in clicks] == [0, 1]
    assert all(
        (c.tenant_id, c.env_id, c.content_id) == (TENANT, "env_7", CONTENT_ID) for c in clicks
    )
    assert tracked_urls(content) == HTML_URLS
    assert [tracked_urls(content)[c.n] for c in clicks] == HTML_URLS


def test_the_unsubscribe_headers_carry_the_unsubscribe_url_of_the_body() -> None:
    content = composed()
    copy, raw = copy_of(content)
    message = parse(raw)
    header = message["List-Unsubscribe"]
    assert header is not None
    assert message.get_all("List-Unsubscribe") == [header]
    assert message.get_all("List-Unsubscribe-Post") == ["List-Unsubscribe=One-Click"]
    match = re.fullmatch(r"<(.+)>", header)
    assert match is not None
    assert urls(match[1]) == [
        (Kind.UNSUBSCRIBE, Claim(Kind.UNSUBSCRIBE, TENANT, "env_1", CONTENT_ID))
    ]
    [html] = inline(raw, "html")
    [text] = inline(raw, "plain")
    assert match[1] in html
    assert match[1] in text
    assert copy.headers.endswith(b"\r\n")


def test_html_only_with_and_without_a_body_tag() -> None:
    with_body = composed(text=None, html="<html><body><p>Hi</p></body></html>")
    _, raw = copy_of(with_body)
    assert_smtp_safe(raw)
    [html] = inline(raw, "html")
    assert placeholders(html).endswith(
        FOOTER_HTML.format(url="{unsubscribe}")
        + PIXEL_HTML.format(url="{open}")
        + "</body></html>\r\n"
    )
    assert inline(raw, "plain") == []

    fragment = "<p>Hi <a href='https://shop.example/'>shop</a></p>"
    _, raw = copy_of(composed(text=None, html=fragment))
    assert_smtp_safe(raw)
    [html] = inline(raw, "html")
    expected = expected_html(fragment + "\r\n", ALL)
    assert placeholders(html) == expected
    assert expected.endswith(PIXEL_HTML.format(url="{open}") + "\r\n")


def test_the_pixel_goes_inside_the_last_body_close_whatever_its_case() -> None:
    html = "<HTML><BODY><p>a</p></BODY >\n<!-- trailer --></HTML>"
    _, raw = copy_of(composed(Tracking(opens=True, base=BASE), text=None, html=html))
    [copy] = inline(raw, "html")
    assert placeholders(copy) == (
        "<HTML><BODY><p>a</p>" + PIXEL_HTML.format(url="{open}") + "</BODY >\r\n"
        "<!-- trailer --></HTML>\r\n"
    )


def test_attachments_stay_byte_for_byte() -> None:
    pdf = compose.Attachment(
        "отчёт за ноябрь — итоговая версия.pdf", bytes(range(256)) * 40, "application/pdf"
    )
    page = compose.Attachment("page.html", b'<a href="https://att.example/">x</a>', "text/html")
    note = compose.Attachment("note.txt", b"[Unsubscribe] stays here", "text/plain")
    content = composed(attachments=(pdf, page, note))
    copy, raw = copy_of(content)
    assert_smtp_safe(raw)
    # Every attachment part, headers and base64 lines, is in the copy as it was.
    boundary = re.search(rb'boundary="([^"]+)"', content.body)
    assert boundary is not None
    parts = content.body.split(b"\r\n--" + boundary[1])
    attached = [p for p in parts if b"Content-Disposition: attachment" in p]
    assert len(attached) == 3
    for part in attached:
        assert part in copy.body
    found = {
        part.get_filename(): part.get_payload(decode=True)
        for part in parse(raw).walk()
        if part.get_filename()
    }
    assert found == {pdf.filename: pdf.data, "page.html": page.data, "note.txt": note.data}
    # The HTML attachment's link is neither rewritten nor numbered; its tag stays.
    assert tracked_urls(content) == HTML_URLS
    assert len(inline(raw, "html")) == 1


def test_unsubscribe_tags_become_the_link_and_then_no_footer_is_added() -> None:
    html = (
        '<html><body><p>Bye: <a href="[Unsubscribe]">unsubscribe</a> '
        "or <a href='https://list.example/?u=[unsubscribe]'>here</a></p></body></html>"
    )
    text = "To stop: [Unsubscribe]\n"
    tracking = Tracking(opens=True, clicks=True, unsubscribe=True, base=BASE)
    content = composed(tracking, text=text, html=html)
    copy, raw = copy_of(content)
    assert_smtp_safe(raw)
    [copy_html] = inline(raw, "html")
    assert placeholders(copy_html) == (
        '<html><body><p>Bye: <a href="{unsubscribe}">unsubscribe</a> '
        "or <a href='https://list.example/?u={unsubscribe}'>here</a></p>"
        + PIXEL_HTML.format(url="{open}")
        + "</body></html>\r\n"
    )
    [copy_text] = inline(raw, "plain")
    assert placeholders(copy_text) == "To stop: {unsubscribe}\r\n"
    assert "Unsubscribe / " not in copy_html + copy_text  # no footer
    assert tracked_urls(content) == []  # the tagged hrefs are not click links
    assert b"List-Unsubscribe: <" in copy.headers


def test_a_tag_asks_for_the_unsubscribe_link_even_with_unsubscribe_off() -> None:
    tracking = Tracking(opens=False, clicks=False, unsubscribe=False, base=BASE)
    content = composed(tracking, text="Stop: [Unsubscribe]\n", html="<p>No tag here</p>")
    copy, raw = copy_of(content)
    assert copy.headers.endswith(b"List-Unsubscribe-Post: List-Unsubscribe=One-Click\r\n")
    [copy_text] = inline(raw, "plain")
    assert placeholders(copy_text) == "Stop: {unsubscribe}\r\n"
    # The HTML body had no tag: it gets the footer, as any body without one.
    [copy_html] = inline(raw, "html")
    assert (
        placeholders(copy_html)
        == "<p>No tag here</p>" + FOOTER_HTML.format(url="{unsubscribe}") + "\r\n"
    )
    message = parse(raw)
    assert message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"


def test_without_unsubscribe_there_is_no_footer_and_no_headers() -> None:
    tracking = Tracking(opens=True, clicks=True, unsubscribe=False, base=BASE)
    content = composed(tracking)
    copy, raw = copy_of(content)
    assert copy.headers == b""
    message = parse(raw)
    assert message["List-Unsubscribe"] is None
    assert message["List-Unsubscribe-Post"] is None
    [html] = inline(raw, "html")
    assert "{unsubscribe}" not in placeholders(html)
    assert placeholders(html) == expected_html(inline(content.body, "html")[0], tracking)
    # The text body has nothing to change: it stays as it was, encoding included.
    assert b"Content-Transfer-Encoding: quoted-printable\r\n\r\n=D0=9F" in content.body
    text_part = content.body[content.body.index(b"Content-Type: text/plain") :]
    text_part = text_part[: text_part.index(b"\r\n--")]
    assert text_part in copy.body


def test_clicks_off_leaves_links_but_keeps_the_numbering() -> None:
    tracking = Tracking(opens=True, base=BASE)
    content = composed(tracking)
    _, raw = copy_of(content)
    [html] = inline(raw, "html")
    assert [kind for kind, _ in urls(html)] == [Kind.OPEN]
    assert 'href="https://shop.example/sale?a=1&amp;b=2"' in html
    assert tracked_urls(content) == HTML_URLS


@pytest.mark.parametrize(
    ("tracking", "html"),
    [
        (None, HTML),
        (Tracking(base=BASE), HTML),
        (Tracking(clicks=True, base=BASE), '<p><a href="mailto:a@example.com">mail</a></p>'),
        (Tracking(opens=True, clicks=True, base=BASE), None),  # text only: no HTML body
    ],
)
def test_nothing_to_track_leaves_the_body_byte_identical(
    tracking: Tracking | None, html: str | None
) -> None:
    content = composed(tracking, html=html)
    prepared = prepare(content)
    assert not prepared.changes
    copy = render_copy(prepared, SIGNER, TENANT, "env_1", CONTENT_ID)
    assert copy == Copy(content.body, b"")


def test_as_sent_without_changes_stays_byte_identical() -> None:
    raw = AS_SENT_8BIT.replace(b"<a href=", b"<a data-x=").replace(b"</body>", b"")
    content = as_sent(raw, Tracking(clicks=True, base=BASE))
    copy, _ = copy_of(content)
    assert copy == Copy(raw, b"")


def test_recipients_of_one_prepared_content_get_their_own_tokens() -> None:
    content = composed()
    prepared = prepare(content)
    copies = {env: render_copy(prepared, SIGNER, TENANT, env, CONTENT_ID) for env in ("e1", "e2")}
    assert copies["e1"].body != copies["e2"].body
    assert copies["e1"].headers != copies["e2"].headers
    for env, copy in copies.items():
        [html] = inline(rendered(content, copy, env), "html")
        claims = urls(html)
        assert len(claims) == 4  # two clicks, the footer's unsubscribe, the pixel
        assert {claim.env_id for _, claim in claims} == {env}
    # The same recipient rendered again gets the same copy.
    assert render_copy(prepared, SIGNER, TENANT, "e1", CONTENT_ID) == copies["e1"]
    [first] = inline(rendered(content, copies["e1"]), "html")
    [second] = inline(rendered(content, copies["e2"], "e2"), "html")
    assert first_token(first, Kind.OPEN) != first_token(second, Kind.OPEN)
    assert placeholders(first) == placeholders(second)


def test_a_senders_own_list_unsubscribe_header_is_not_repeated() -> None:
    content = composed(headers={"List-Unsubscribe": "<mailto:leave@example.com>"})
    copy, raw = copy_of(content)
    assert copy.headers == b""
    assert parse(raw).get_all("List-Unsubscribe") == ["<mailto:leave@example.com>"]
    assert parse(raw)["List-Unsubscribe-Post"] is None
    [html] = inline(raw, "html")
    assert "{unsubscribe}" in placeholders(html)  # the link in the body is still there


def test_long_html_lines_are_folded_by_quoted_printable() -> None:
    html = (
        "<html><body><p>"
        + ("x" * 3000)
        + " <a href='https://shop.example/'>a</a></p></body></html>"
    )
    content = composed(text=None, html=html)
    _, raw = copy_of(content)
    assert_smtp_safe(raw)
    body = raw.split(b"\r\n\r\n", 1)[1]
    assert max(len(line) for line in body.split(b"\r\n")) <= 76
    [copy] = inline(raw, "html")
    assert placeholders(copy) == expected_html(html + "\r\n", ALL)


# -- content as sent ------------------------------------------------------------------

AS_SENT_8BIT = (
    "From: Отдел новостей <news@example.com>\r\n"
    "To: Получатель <rcpt@example.org>\r\n"
    "Subject: Скидки недели — 本周折扣\r\n"
    "Message-ID: <as-sent-1@example.com>\r\n"
    "Date: Tue, 01 Dec 2026 12:00:00 +0000\r\n"
    "MIME-Version: 1.0\r\n"
    'Content-Type: multipart/alternative; boundary="ALT"\r\n'
    "\r\n"
    "--ALT\r\n"
    "Content-Type: text/plain; charset=utf-8\r\n"
    "Content-Transfer-Encoding: 8bit\r\n"
    "\r\n"
    "Здравствуйте! 你好\r\n"
    "--ALT\r\n"
    "Content-Type: text/html; charset=utf-8\r\n"
    "Content-Transfer-Encoding: 8bit\r\n"
    "\r\n"
    "<html><body>\r\n"
    '<p>Здравствуйте, <a href="https://shop.example/скидки?a=1&amp;b=2">скидки</a></p>\r\n'
    '<p><a href="mailto:help@example.com">help</a></p>\r\n'
    "</body></html>\r\n"
    "--ALT--\r\n"
).encode()


def test_as_sent_8bit_keeps_its_headers_and_tracks_its_utf8_body() -> None:
    content = as_sent(AS_SENT_8BIT)
    copy, raw = copy_of(content)
    assert_smtp_safe(raw)
    head = raw.split(b"\r\n\r\n", 1)[0]
    assert "Subject: Скидки недели — 本周折扣\r\n".encode() in head
    assert "From: Отдел новостей <news@example.com>\r\n".encode() in head
    assert raw.startswith(b"X-Postwire-Env-Id: env_1\r\nList-Unsubscribe: <" + BASE.encode())
    [html] = inline(raw, "html")
    [original_html] = inline(AS_SENT_8BIT, "html")
    assert placeholders(html) == expected_html(original_html, ALL)
    assert tracked_urls(content) == ["https://shop.example/скидки?a=1&b=2"]
    assert 'href="mailto:help@example.com"' in html
    [text] = inline(raw, "plain")
    # The line end before the boundary is the boundary's: the text ends without one.
    assert placeholders(text) == "Здравствуйте! 你好" + FOOTER_TEXT.format(
        url="{unsubscribe}"
    ).replace("\n", "\r\n")
    assert copy.headers.startswith(b"List-Unsubscribe: <")


def test_as_sent_base64_html_is_decoded_tracked_and_sent_quoted_printable() -> None:
    html = (
        "<html><body><p>Добро пожаловать <a href='https://shop.example/x'>x</a></p>\r\n"
        "<p>[Unsubscribe]</p></body></html>\r\n"
    )
    encoded = base64.encodebytes(html.encode()).replace(b"\n", b"\r\n")
    raw = (
        b"From: news@example.com\r\nTo: rcpt@example.org\r\nSubject: b64\r\n"
        b"MIME-Version: 1.0\r\n"
        b"Content-Type: text/html; charset=UTF-8\r\n"
        b"Content-Transfer-Encoding: base64\r\n\r\n" + encoded
    )
    content = as_sent(raw, Tracking(opens=True, clicks=True, base=BASE))
    copy, out = copy_of(content)
    assert_smtp_safe(out)
    message = parse(out)
    assert message["Content-Transfer-Encoding"] == "quoted-printable"
    assert message.get_all("Content-Transfer-Encoding") == ["quoted-printable"]
    assert message.get_content_charset() == "utf-8"
    [copy_html] = inline(out, "html")
    assert placeholders(copy_html) == (
        "<html><body><p>Добро пожаловать <a href='{click 0}'>x</a></p>\r\n"
        "<p>{unsubscribe}</p>" + PIXEL_HTML.format(url="{open}") + "</body></html>\r\n"
    )
    assert tracked_urls(content) == ["https://shop.example/x"]
    assert copy.headers.startswith(b"List-Unsubscribe: <")


NESTED = (
    b"From: news@example.com\r\n"
    b"To: rcpt@example.org\r\n"
    b"Subject: nested\r\n"
    b"MIME-Version: 1.0\r\n"
    b'Content-Type: multipart/mixed; boundary="MIX"\r\n'
    b"\r\n"
    b"This is a multi-part message in MIME format.\r\n"
    b"--MIX\r\n"
    b'Content-Type: multipart/alternative; boundary="ALT"\r\n'
    b"\r\n"
    b"--ALT\r\n"
    b"Content-Type: text/plain; charset=us-ascii\r\n"
    b"\r\n"
    b"Outer text\r\n"
    b"--ALT\r\n"
    b"Content-Type: text/html; charset=us-ascii\r\n"
    b"\r\n"
    b'<html><body><a href="https://outer.example/1">1</a>'
    b'<a href="https://outer.example/2">2</a></body></html>\r\n'
    b"--ALT--\r\n"
    b"\r\n"
    b"--MIX\r\n"
    b"Content-Type: message/rfc822\r\n"
    b'Content-Disposition: attachment; filename="forwarded.eml"\r\n'
    b"\r\n"
    b"From: someone@other.example\r\n"
    b"Subject: forwarded\r\n"
    b"MIME-Version: 1.0\r\n"
    b'Content-Type: multipart/alternative; boundary="INNER"\r\n'
    b"\r\n"
    b"--INNER\r\n"
    b"Content-Type: text/plain\r\n"
    b"\r\n"
    b"Inner text [Unsubscribe]\r\n"
    b"--INNER\r\n"
    b"Content-Type: text/html\r\n"
    b"\r\n"
    b'<html><body><a href="https://inner.example/">inner</a></body></html>\r\n'
    b"--INNER--\r\n"
    b"\r\n"
    b"--MIX\r\n"
    b"Content-Type: application/octet-stream\r\n"
    b"Content-Transfer-Encoding: base64\r\n"
    b'Content-Disposition: attachment; filename="blob.bin"\r\n'
    b"\r\n"
    b"AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=\r\n"
    b"--MIX--\r\n"
)


def test_an_attached_message_is_left_alone_and_not_numbered() -> None:
    content = as_sent(NESTED)
    copy, raw = copy_of(content)
    assert_smtp_safe(raw)
    assert tracked_urls(content) == ["https://outer.example/1", "https://outer.example/2"]
    # The forwarded message, its links and its tag, and the binary part are as they were.
    forwarded = NESTED[
        NESTED.index(b"From: someone@other.example") : NESTED.index(
            b"--MIX\r\nContent-Type: application"
        )
    ]
    assert forwarded in copy.body
    blob = NESTED[NESTED.index(b"Content-Type: application/octet-stream") :]
    assert blob in copy.body
    assert b"This is a multi-part message in MIME format.\r\n--MIX\r\n" in copy.body
    [html] = inline(raw, "html")
    assert placeholders(html).count("{open}") == 1
    assert [c.n for k, c in urls(html) if k is Kind.CLICK] == [0, 1]
    # One pixel in the whole copy: none in the attached message.
    assert raw.count(b"/t/o/") == 1
    [text] = inline(raw, "plain")
    assert placeholders(text) == "Outer text" + FOOTER_TEXT.format(url="{unsubscribe}").replace(
        "\n", "\r\n"
    )


def test_as_sent_with_its_own_list_unsubscribe_gets_no_second_one() -> None:
    raw = AS_SENT_8BIT.replace(
        b"MIME-Version: 1.0\r\n",
        b"List-Unsubscribe: <mailto:leave@example.com>\r\nMIME-Version: 1.0\r\n",
    )
    content = as_sent(raw)
    prepared = prepare(content)
    assert prepared.has_list_unsubscribe
    copy, out = copy_of(content)
    assert copy.headers == b""
    message = parse(out)
    assert message.get_all("List-Unsubscribe") == ["<mailto:leave@example.com>"]
    assert message["List-Unsubscribe-Post"] is None
    [html] = inline(out, "html")
    assert "{unsubscribe}" in placeholders(html)


def test_links_are_numbered_across_html_bodies_in_mime_order() -> None:
    raw = (
        b"From: news@example.com\r\nSubject: two\r\nMIME-Version: 1.0\r\n"
        b'Content-Type: multipart/mixed; boundary="B"\r\n\r\n'
        b"--B\r\nContent-Type: text/html\r\n\r\n"
        b'<a href="https://one.example/">1</a><a href="https://two.example/">2</a>\r\n'
        b"--B\r\nContent-Type: text/html\r\n\r\n"
        b'<a href="https://three.example/">3</a>\r\n'
        b"--B--\r\n"
    )
    content = as_sent(raw, Tracking(clicks=True, base=BASE))
    _, out = copy_of(content)
    assert_smtp_safe(out)
    bodies = inline(out, "html")
    assert [[c.n for _, c in urls(body)] for body in bodies] == [[0, 1], [2]]
    assert tracked_urls(content) == [
        "https://one.example/",
        "https://two.example/",
        "https://three.example/",
    ]


# -- DKIM ---------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def dkim_key() -> tuple[bytes, Callable[..., bytes | None]]:
    private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = private.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    der = private.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    record = b"v=DKIM1; k=rsa; p=" + base64.b64encode(der)

    def dns(name: bytes, timeout: int = 5) -> bytes | None:
        return record if name == b"sel._domainkey.example.com." else None

    return pem, dns


SIGNED = [
    b"from", b"to", b"subject", b"date", b"message-id", b"mime-version", b"content-type",
    b"list-unsubscribe", b"list-unsubscribe-post",
]  # fmt: skip


@pytest.mark.parametrize(
    "content",
    [composed(), composed(text=None, html="<p>x</p>"), as_sent(AS_SENT_8BIT), as_sent(NESTED)],
    ids=["alternative", "html-only", "as-sent-8bit", "as-sent-nested"],
)
def test_a_dkim_signed_copy_verifies_and_covers_list_unsubscribe(
    content: StoredContent, dkim_key: tuple[bytes, Callable[..., bytes | None]]
) -> None:
    pem, dns = dkim_key
    copy, raw = copy_of(content)
    assert copy.headers
    signature = dkim.sign(
        raw,
        b"sel",
        b"example.com",
        pem,
        canonicalize=(b"relaxed", b"relaxed"),
        include_headers=SIGNED,
        linesep=b"\r\n",
    )
    signed = signature + raw
    assert dkim.verify(signed, dnsfunc=dns)
    header = signature.decode().replace("\r\n", "")
    assert "list-unsubscribe:list-unsubscribe-post" in header.replace(" ", "")
    tampered = re.sub(
        rb"List-Unsubscribe: <[^>]+>", b"List-Unsubscribe: <https://evil.example/>", signed
    )
    assert tampered != signed
    assert not dkim.verify(tampered, dnsfunc=dns)


def test_prepared_is_reusable_across_many_copies() -> None:
    content = composed()
    prepared: Prepared = prepare(content)
    envs = [f"env_{n}" for n in range(20)]
    opens = set()
    for env in envs:
        copy = render_copy(prepared, SIGNER, TENANT, env, CONTENT_ID)
        [html] = inline(rendered(content, copy, env), "html")
        opens.add(first_token(html, Kind.OPEN))
    assert len(opens) == len(envs)


def test_a_click_goes_only_to_the_link_its_token_was_made_for() -> None:
    urls = ["https://a.example/1", "https://b.example/2", "https://c.example/3"]

    def claim(n: int, url: str) -> Claim:
        return Claim(Kind.CLICK, "T", "E", "C", n, link_check(url))

    assert clicked_url(urls, claim(1, urls[1])) == urls[1]
    # Numbering moved (a link added before it, a parser change): found by its hash.
    assert clicked_url(["https://new.example/0", *urls], claim(1, urls[1])) == urls[1]
    # The link is not in the content (edited, or another content's token): nowhere.
    assert clicked_url(urls, claim(1, "https://evil.example/")) is None
    assert clicked_url(urls, claim(7, urls[0])) == urls[0]
    assert clicked_url([], claim(0, urls[0])) is None
