"""Turning a send request into the content every recipient's copy shares.

The body (text, HTML, attachments) and the common headers are encoded once per request
(a :class:`StoredContent`); delivery adds each recipient's small header block (To,
Message-ID) at send time, so per-recipient work is O(1) in the size of the mail. Output
is 7-bit (quoted-printable or base64 bodies, RFC 2047 headers) with CRLF line ends, so
any SMTP server accepts it byte for byte.

Every value that becomes a header is checked for CR/LF and control characters first:
the ``email`` package does not refuse them on every path.
"""

from __future__ import annotations

import base64
import binascii
import re
from dataclasses import dataclass, field
from datetime import datetime
from email.header import Header
from email.utils import format_datetime

from postwire_common.addresses import Mailbox, check_header_value
from postwire_common.content import StoredContent
from postwire_common.errors import EmptyValue, InvalidValue, SizeExceeded
from postwire_ingest import attachments, mime
from postwire_ingest.limits import (
    MAX_CUSTOM_HEADERS,
    MAX_MESSAGE_BYTES,
    MAX_SUBJECT_CHARS,
)

_HEADER_NAME = re.compile(r"[!-9;-~]{1,76}")  # RFC 5322 ftext
# Headers we write ourselves, and headers that carry trust a receiver or a list manager
# gives to them (authentication results, signatures, resent and trace fields): a caller
# may not set or repeat them.
RESERVED_HEADERS = frozenset(
    {
        "from", "to", "cc", "bcc", "subject", "date", "message-id", "mime-version",
        "content-type", "content-transfer-encoding", "content-disposition", "content-id",
        "return-path", "received", "dkim-signature", "sender", "x-postwire-env-id",
        "authentication-results", "received-spf", "domainkey-signature", "delivered-to",
        "envelope-to", "x-original-to", "errors-to", "require-recipient-valid-since",
    }
)  # fmt: skip
# Whole families: ARC-Seal, ARC-Message-Signature, Resent-From, X-Postwire-…
RESERVED_PREFIXES = ("arc-", "resent-", "x-postwire-")


@dataclass(frozen=True)
class Attachment:
    filename: str
    data: bytes
    content_type: str


@dataclass(frozen=True)
class Content:
    subject: str
    text: str | None = None
    html: str | None = None
    attachments: tuple[Attachment, ...] = ()
    headers: dict[str, str] = field(default_factory=dict)


def _plain(text: str) -> bool:
    """Printable ASCII that no reader could take for an RFC 2047 encoded word."""
    return text.isascii() and text.isprintable() and "=?" not in text


def unstructured_header(name: str, value: str) -> str:
    """``Name: value\\r\\n`` for Subject and custom headers.

    Short plain ASCII goes out as it is; anything else is RFC 2047-encoded by
    ``email.header.Header``, which never decodes its input. (Parsing the value with the
    ``email`` policies would decode ``=?utf-8?q?=0D=0A?=`` into a real CRLF.)
    """
    if _plain(value) and len(name) + 2 + len(value) <= 78:
        return f"{name}: {value}\r\n"
    encoded = Header(value, "utf-8", header_name=name).encode(linesep="\r\n")
    return f"{name}: {encoded}\r\n"


_ATOM_PHRASE = re.compile(r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~ -]+")


def mailbox_value(mailbox: Mailbox, header: str) -> str:
    """A mailbox as a header value: the display name as atoms, a quoted string or
    RFC 2047 encoded words (UTF-8), then the address in angle brackets."""
    name = mailbox.name
    if not name:
        return mailbox.address
    if _plain(name) and _ATOM_PHRASE.fullmatch(name):
        phrase = name
    elif _plain(name):
        phrase = '"' + name.replace("\\", "\\\\").replace('"', '\\"') + '"'
    else:
        phrase = Header(name, "utf-8", header_name=header).encode(linesep="\r\n")
    return f"{phrase} <{mailbox.address}>"


def from_header(sender: Mailbox) -> str:
    return f"From: {mailbox_value(sender, 'From')}\r\n"


def decode_attachment(filename: str, content: str, content_type: str | None) -> Attachment:
    check_header_value("attachment filename", filename)
    if not filename.strip():
        raise EmptyValue("every attachment needs a filename")
    attachments.check_filename(filename)
    kind = attachments.content_type(filename, content_type)
    try:
        data = base64.b64decode(content, validate=True)
    except (binascii.Error, ValueError):
        raise InvalidValue(f"attachment {filename!r}: content is not valid base64") from None
    return Attachment(filename, data, kind)


def check_custom_headers(headers: dict[str, str]) -> dict[str, str]:
    if len(headers) > MAX_CUSTOM_HEADERS:
        raise InvalidValue(f"at most {MAX_CUSTOM_HEADERS} custom headers")
    seen: set[str] = set()
    for name, value in headers.items():
        if not _HEADER_NAME.fullmatch(name):
            raise InvalidValue(f"{name!r} is not a valid header name")
        lowered = name.lower()
        if lowered in RESERVED_HEADERS or lowered.startswith(RESERVED_PREFIXES):
            raise InvalidValue(f"header {name} is set by postwire and cannot be given")
        if lowered in seen:
            raise InvalidValue(f"header {name} is given twice")
        seen.add(lowered)
        check_header_value(f"header {name}", value)
    return headers


def check_content(content: Content) -> None:
    if not content.subject.strip():
        raise EmptyValue("subject is required")
    if len(content.subject) > MAX_SUBJECT_CHARS:
        raise InvalidValue(f"subject is longer than {MAX_SUBJECT_CHARS} characters")
    check_header_value("subject", content.subject)
    if not (content.text or content.html):
        raise EmptyValue("text or html is required (the body is empty)")
    check_custom_headers(content.headers)


def prepare(sender: Mailbox, content: Content, now: datetime) -> StoredContent:
    """Encode everything that is the same for every recipient."""
    check_header_value("the display name of from", sender.name)
    check_content(content)
    body = mime.body(content.text, content.html, content.attachments)

    head = [
        from_header(sender),
        unstructured_header("Subject", content.subject),
        f"Date: {format_datetime(now)}\r\n",
    ]
    head.extend(unstructured_header(name, value) for name, value in content.headers.items())
    prepared = StoredContent("".join(head).encode("ascii"), body)
    if prepared.size + 200 > MAX_MESSAGE_BYTES:
        raise SizeExceeded("Message exceeds fixed size limit (10 MB)")
    return prepared
