"""Each recipient's copy of tracked mail: pixel, rewritten links, unsubscribe link.

A content is analysed once (:func:`prepare`; delivery caches the result per content):
its MIME tree is parsed, every inline ``text/html`` and ``text/plain`` body is decoded
and cut into pieces around what changes per recipient (tracked links, ``[Unsubscribe]``
tags, the pixel, the unsubscribe footer), and the message is serialised once with a
marker where each such body goes. A recipient's copy is then joins and one
quoted-printable encoding per changed body (C code), whatever the size of the rest;
bodies with nothing to change, attachments and headers stay as they were.

Link ``n`` is the n-th link :func:`~postwire_common.tracking.html.find_links` finds in
the HTML bodies taken in MIME order; :func:`tracked_urls` numbers them the same way for
the events service, which redirects a click to ``tracked_urls(content)[n]``.

The unsubscribe link goes where the sender put Devino's ``[Unsubscribe]`` tag; a body
without one gets a footer when unsubscribe tracking is on (a tag turns it on by itself:
the sender asked for the link). Such copies also carry ``List-Unsubscribe`` with
``List-Unsubscribe-Post: List-Unsubscribe=One-Click`` (RFC 8058), which delivery's DKIM
signature covers.
"""

from __future__ import annotations

import binascii
import email.policy
import html as html_lib
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from email.generator import BytesGenerator
from email.message import Message
from email.parser import BytesParser
from io import BytesIO

from postwire_common.content import StoredContent
from postwire_common.tracking.choice import Tracking
from postwire_common.tracking.html import UNSUBSCRIBE_TAG, find_links
from postwire_common.tracking.tokens import Claim, Kind, TokenSigner, link_check

_POLICY = email.policy.compat32.clone(linesep="\r\n")
_BODY_END = re.compile(r"</body\s*>", re.IGNORECASE)
_TAG = re.compile(re.escape(UNSUBSCRIBE_TAG), re.IGNORECASE)
_LIST_UNSUBSCRIBE = ("List-Unsubscribe", "List-Unsubscribe-Post")

# What goes between pieces: ("link", n), ("unsubscribe", 0) or ("pixel", 0).
Slot = tuple[str, int]

FOOTER_TEXT = "\n\n--\nUnsubscribe / 退订: {url}\n"
FOOTER_HTML = (
    '<p style="font-size:12px;color:#777;margin-top:24px">'
    '<a href="{url}" style="color:#777">Unsubscribe / 退订</a></p>'
)
PIXEL_HTML = (
    '<img src="{url}" width="1" height="1" alt="" '
    'style="display:block;width:1px;height:1px;border:0" />'
)


def _message(content: StoredContent) -> Message:
    return BytesParser(policy=_POLICY).parsebytes(content.body)


def _attachment(part: Message) -> bool:
    return (part.get("Content-Disposition") or "").strip().lower().startswith("attachment")


def _inline(message: Message) -> Iterator[Message]:
    """The leaf parts of ``message``, not looking into attachments or attached messages
    (a forwarded ``message/rfc822`` is the sender's attachment, not their body)."""
    if _attachment(message) or message.get_content_maintype() == "message":
        return
    if not message.is_multipart():
        yield message
        return
    for part in message.get_payload():
        if isinstance(part, Message):
            yield from _inline(part)


def _bodies(message: Message) -> Iterator[tuple[Message, bool, str]]:
    """(part, is HTML, decoded text) of each inline text/html and text/plain body."""
    for part in _inline(message):
        if part.get_content_maintype() != "text":
            continue
        subtype = part.get_content_subtype()
        if subtype not in ("html", "plain"):
            continue
        payload = part.get_payload(decode=True)
        if not isinstance(payload, bytes):
            continue
        charset = part.get_content_charset() or "us-ascii"
        try:
            text = payload.decode(charset, errors="replace")
        except LookupError:
            text = payload.decode("latin-1")
        yield part, subtype == "html", text


def _urls(bodies: list[tuple[Message, bool, str]]) -> list[str]:
    return [link.url for _, is_html, text in bodies if is_html for link in find_links(text)]


def tracked_urls(content: StoredContent) -> list[str]:
    """The tracked links of ``content``, by number."""
    return _urls(list(_bodies(_message(content))))


def clicked_url(urls: list[str], claim: Claim) -> str | None:
    """Where a click goes: link ``n`` of the content when it is the link the token was
    made for, else the first link that is (numbering changed with the code since the
    mail went out), else nowhere. A token never leads to a link it was not made for."""
    if 0 <= claim.n < len(urls) and link_check(urls[claim.n]) == claim.link:
        return urls[claim.n]
    return next((url for url in urls if link_check(url) == claim.link), None)


@dataclass(frozen=True)
class _Body:
    pieces: list[str | Slot]
    is_html: bool


@dataclass(frozen=True)
class Prepared:
    """A content cut for per-recipient copies (see the module docstring)."""

    head: bytes  # the content's common headers (empty for content as sent)
    frame: list[bytes]  # the serialised body, split where each changed body goes
    bodies: list[_Body]
    tracking: Tracking
    unsubscribe: bool  # the copies carry an unsubscribe link and List-Unsubscribe
    has_list_unsubscribe: bool  # content as sent that brought its own List-Unsubscribe
    links: list[str] = field(default_factory=list)  # tracked_urls(content)

    @property
    def changes(self) -> bool:
        return bool(self.bodies) or self.unsubscribe


def _cut(
    text: str, is_html: bool, tracking: Tracking, unsubscribe: bool, first: int
) -> tuple[list[str | Slot], int]:
    """``text`` as pieces and slots; links are numbered from ``first`` on."""
    spans: list[tuple[int, int, Slot]] = []
    n = first
    if is_html and tracking.clicks:
        for link in find_links(text):
            spans.append((link.start, link.end, ("link", n)))
            n += 1
    elif is_html:
        n += len(find_links(text))  # numbering is the content's, tracked or not
    tagged = False
    if unsubscribe:
        for match in _TAG.finditer(text):
            tagged = True
            spans.append((match.start(), match.end(), ("unsubscribe", 0)))
    spans.sort()
    pieces: list[str | Slot] = []
    at = 0
    for start, end, slot in spans:
        if start < at:
            continue  # a tag inside a link's href: the link is the tag
        pieces += [text[at:start], slot]
        at = end
    rest = text[at:]
    tail: list[str | Slot] = []
    if is_html:
        if unsubscribe and not tagged:
            before, after = FOOTER_HTML.split("{url}", 1)
            tail += [before, ("unsubscribe", 0), after]
        if tracking.opens:
            before, after = PIXEL_HTML.split("{url}", 1)
            tail += [before, ("pixel", 0), after]
        close: int | None = None  # the last </body>: the footer and pixel go inside it
        for found in _BODY_END.finditer(rest):
            close = found.start()
        if close is None:  # at the end, before the final line end
            close = len(rest.rstrip("\n"))
        pieces += [rest[:close], *tail, rest[close:]]
    else:
        pieces.append(rest)
        if unsubscribe and not tagged:
            before, after = FOOTER_TEXT.split("{url}", 1)
            pieces += [before, ("unsubscribe", 0), after]
    return [p for p in pieces if p != ""], n


def prepare(content: StoredContent) -> Prepared:
    """Cut ``content`` for the copies its tracking choice asks for."""
    tracking = Tracking.from_json(content.tracking)
    message = _message(content)
    found = list(_bodies(message))
    tagged = any(_TAG.search(text) for _, _, text in found)
    unsubscribe = tracking.unsubscribe or tagged
    # The sender's own List-Unsubscribe (as sent, or a custom header of composed content).
    headers = message if content.as_sent else _message(StoredContent(b"", content.head))
    has_own = any(headers.get(name) is not None for name in _LIST_UNSUBSCRIBE)
    bodies: list[_Body] = []
    changed: list[Message] = []
    n = 0
    for part, is_html, text in found:
        pieces, n = _cut(text.replace("\r\n", "\n"), is_html, tracking, unsubscribe, n)
        if all(isinstance(p, str) for p in pieces):
            continue  # nothing for this body: it stays byte for byte
        bodies.append(_Body(pieces, is_html))
        changed.append(part)
    if not bodies:
        return Prepared(content.head, [content.body], [], tracking, unsubscribe, has_own)
    markers = []
    for i, part in enumerate(changed):
        marker = f"\x00postwire-body-{i}\x00"
        markers.append(marker.encode("ascii"))
        del part["Content-Transfer-Encoding"]
        part["Content-Transfer-Encoding"] = "quoted-printable"
        part.set_param("charset", "utf-8")
        part.set_payload(marker)
    out = BytesIO()
    BytesGenerator(out, mangle_from_=False, policy=_POLICY).flatten(message)
    serialised = out.getvalue()
    frame: list[bytes] = []
    for marker_bytes in markers:
        cut_before, serialised = serialised.split(marker_bytes, 1)
        frame.append(cut_before)
    frame.append(serialised)
    return Prepared(content.head, frame, bodies, tracking, unsubscribe, has_own, _urls(found))


def _qp(text: str) -> bytes:
    # The parser left the line end before a boundary (RFC 2046) out of the text and the
    # frame has it again: a final newline of the text is the body's own and stays.
    return binascii.b2a_qp(text.encode("utf-8"), istext=True).replace(b"\n", b"\r\n")


@dataclass(frozen=True, slots=True)
class Copy:
    body: bytes  # the serialised body (content as sent: the whole message)
    headers: bytes  # List-Unsubscribe and List-Unsubscribe-Post, or nothing


def render_copy(
    prepared: Prepared, signer: TokenSigner, tenant_id: str, env_id: str, content_id: str
) -> Copy:
    """One recipient's body and extra headers."""
    base, links = prepared.tracking.base, prepared.links

    def url(kind: Kind, n: int = 0) -> str:
        return signer.url(base, Claim(kind, tenant_id, env_id, content_id, n))

    unsubscribe_url = url(Kind.UNSUBSCRIBE) if prepared.unsubscribe else ""
    parts: list[bytes] = []
    for frame, body in zip(prepared.frame, prepared.bodies, strict=False):
        parts.append(frame)
        values: list[str] = []
        for piece in body.pieces:
            if isinstance(piece, str):
                values.append(piece)
                continue
            if piece[0] == "link":
                n = piece[1]
                value = signer.url(
                    base,
                    Claim(Kind.CLICK, tenant_id, env_id, content_id, n, link_check(links[n])),
                )
            elif piece[0] == "pixel":
                value = url(Kind.OPEN)
            else:
                value = unsubscribe_url
            values.append(html_lib.escape(value) if body.is_html else value)
        parts.append(_qp("".join(values)))
    parts.append(prepared.frame[-1])
    headers = b""
    if prepared.unsubscribe and not prepared.has_list_unsubscribe:
        headers = (
            f"List-Unsubscribe: <{unsubscribe_url}>\r\n"
            "List-Unsubscribe-Post: List-Unsubscribe=One-Click\r\n"
        ).encode("ascii")
    return Copy(b"".join(parts), headers)
