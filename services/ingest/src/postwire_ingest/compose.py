"""Turning a send request into RFC 5322 messages, one per recipient.

The body (text, HTML, attachments) is encoded once per request; each recipient only
adds a small header block (To, Message-ID), so per-recipient work is O(1) in the size
of the mail. Output is 7-bit (quoted-printable or base64 bodies, RFC 2047 headers) with
CRLF line ends, so any SMTP server accepts it byte for byte.

Every value that becomes a header is checked for CR/LF and control characters first:
the ``email`` package does not refuse them on every path.
"""

from __future__ import annotations

import base64
import binascii
import re
from dataclasses import dataclass, field
from datetime import datetime
from email import policy
from email.headerregistry import Address
from email.message import EmailMessage
from email.utils import format_datetime

from postwire_common.addresses import Mailbox, check_header_value
from postwire_common.errors import EmptyValue, InvalidValue, SizeExceeded
from postwire_ingest.limits import (
    FORBIDDEN_EXTENSIONS,
    MAX_CUSTOM_HEADERS,
    MAX_MESSAGE_BYTES,
    MAX_SUBJECT_CHARS,
)

SMTP_7BIT = policy.SMTP.clone(cte_type="7bit")

_HEADER_NAME = re.compile(r"^[!-9;-~]{1,76}$")  # RFC 5322 ftext
# Headers we write ourselves; a caller may not set or repeat them.
RESERVED_HEADERS = frozenset(
    {
        "from", "to", "cc", "bcc", "subject", "date", "message-id", "mime-version",
        "content-type", "content-transfer-encoding", "content-disposition", "content-id",
        "return-path", "received", "dkim-signature", "sender", "x-postwire-env-id",
    }
)  # fmt: skip


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


@dataclass(frozen=True)
class PreparedMail:
    """A mail whose body and common headers are encoded; ``render`` adds a recipient."""

    head: str
    body: str

    def render(self, rcpt: str, msg_id: str, env_id: str) -> str:
        return (
            f"{self.head}To: {rcpt}\r\nMessage-ID: {msg_id}\r\n"
            f"X-Postwire-Env-Id: {env_id}\r\n{self.body}"
        )

    @property
    def size(self) -> int:
        return len(self.head) + len(self.body) + 200


def fold_header(name: str, value: str) -> str:
    """``Name: value`` folded and RFC 2047-encoded as needed, ending in CRLF.

    ``policy.fold`` leaves a short value as it is, non-ASCII included; parsing it into a
    header object first makes the policy encode it every time.
    """
    return str(SMTP_7BIT.header_factory(name, value).fold(policy=SMTP_7BIT))


def decode_attachment(filename: str, content: str, content_type: str | None) -> Attachment:
    check_header_value("attachment filename", filename)
    if not filename.strip():
        raise EmptyValue("every attachment needs a filename")
    extension = "." + filename.rsplit(".", 1)[-1].lower() if "." in filename else ""
    if extension in FORBIDDEN_EXTENSIONS:
        raise InvalidValue(f"Not allowed attachement type {extension}")
    try:
        data = base64.b64decode(content, validate=True)
    except (binascii.Error, ValueError):
        raise InvalidValue(f"attachment {filename!r}: content is not valid base64") from None
    kind = (content_type or "application/octet-stream").strip().lower()
    if not re.fullmatch(r"[a-z0-9!#$&^_.+-]+/[a-z0-9!#$&^_.+-]+", kind):
        raise InvalidValue(f"attachment {filename!r}: {content_type!r} is not a MIME type")
    return Attachment(filename, data, kind)


def check_custom_headers(headers: dict[str, str]) -> dict[str, str]:
    if len(headers) > MAX_CUSTOM_HEADERS:
        raise InvalidValue(f"at most {MAX_CUSTOM_HEADERS} custom headers")
    seen: set[str] = set()
    for name, value in headers.items():
        if not _HEADER_NAME.match(name):
            raise InvalidValue(f"{name!r} is not a valid header name")
        lowered = name.lower()
        if lowered in RESERVED_HEADERS:
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


def prepare(sender: Mailbox, content: Content, now: datetime) -> PreparedMail:
    """Encode everything that is the same for every recipient."""
    check_content(content)
    entity = EmailMessage(policy=SMTP_7BIT)
    if content.text is not None:
        entity.set_content(content.text, subtype="plain", charset="utf-8")
        if content.html:
            entity.add_alternative(content.html, subtype="html", charset="utf-8")
    else:
        entity.set_content(content.html or "", subtype="html", charset="utf-8")
    for attachment in content.attachments:
        maintype, _, subtype = attachment.content_type.partition("/")
        entity.add_attachment(
            attachment.data, maintype=maintype, subtype=subtype, filename=attachment.filename
        )
    body = entity.as_bytes(policy=SMTP_7BIT).decode("ascii")

    from_value = str(Address(display_name=sender.name, addr_spec=sender.address))
    head = [
        fold_header("From", from_value),
        fold_header("Subject", content.subject),
        fold_header("Date", format_datetime(now)),
    ]
    head.extend(fold_header(name, value) for name, value in content.headers.items())
    prepared = PreparedMail("".join(head), body)
    if prepared.size > MAX_MESSAGE_BYTES:
        raise SizeExceeded("Message exceeds fixed size limit (10 MB)")
    return prepared
