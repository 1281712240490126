"""Each recipient's copy of tracked mail: pixel, rewritten links, unsubscribe link.

A content is analysed once (:func:`prepare`, cached by delivery per content id): its MIME
tree is parsed, every ``text/html`` and ``text/plain`` body that is not an attachment is
decoded and cut into pieces around the places that change per recipient (tracked links,
``[Unsubscribe]`` tags, the pixel, the footer), and the message is serialised once with
a marker where each such body goes. A recipient's copy is then only joins and one
quoted-printable encoding per body (C code), whatever the size of the rest.

Link ``n`` is the n-th link :func:`~postwire_common.tracking.html.find_links` finds in
the HTML bodies taken in MIME order; :func:`tracked_urls` numbers them the same way for
the events service, which redirects a click to ``tracked_urls(content)[n]``.
"""

from __future__ import annotations

import email.policy
from collections.abc import Iterator
from email.message import Message
from email.parser import BytesParser

from postwire_common.content import StoredContent

_POLICY = email.policy.compat32


def _message(content: StoredContent) -> Message:
    return BytesParser(policy=_POLICY).parsebytes(content.body)


def _bodies(message: Message) -> Iterator[tuple[Message, str, str]]:
    """(part, subtype, decoded text) of each inline text/html and text/plain body."""
    for part in message.walk():
        if part.is_multipart() or part.get_content_maintype() != "text":
            continue
        subtype = part.get_content_subtype()
        if subtype not in ("html", "plain"):
            continue
        if (part.get("Content-Disposition") or "").strip().lower().startswith("attachment"):
            continue
        payload = part.get_payload(decode=True)
        if not isinstance(payload, bytes):
            continue
        charset = part.get_content_charset() or "us-ascii"
        try:
            text = payload.decode(charset, errors="replace")
        except LookupError:
            text = payload.decode("latin-1")
        yield part, subtype, text


def tracked_urls(content: StoredContent) -> list[str]:
    """The tracked links of ``content``, by number."""
    from postwire_common.tracking.html import find_links

    return [
        link.url
        for _, subtype, text in _bodies(_message(content))
        if subtype == "html"
        for link in find_links(text)
    ]
