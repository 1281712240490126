"""A message received over SMTP, made ready to store as sent.

The message is kept as the client wrote it, with four exceptions:

- line ends are normalised to CRLF. A bare LF or CR can never end a line (nor the
  data) downstream: ``\\n.\\n`` inside a message stays text inside that message, and
  delivery dot-stuffs it on the way out, so no receiving MTA can split it in two (SMTP
  smuggling, CVE-2023-51764/51765/51766);
- ``Bcc`` is removed (it names the hidden recipients), as are the headers that carry our
  own or a receiver's trust (``Return-Path``, ``X-Postwire-*``, ``Authentication-Results``);
- ``From``, ``Date`` and ``Message-ID`` are added when missing (RFC 5322 requires the
  first two; every copy keeps one Message-ID, the idempotency key of the submission);
- nothing else: no re-encoding, so the client's own signatures and 8-bit bodies survive.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from email.header import decode_header, make_header
from email.utils import format_datetime, getaddresses

from postwire_common.errors import InvalidValue
from postwire_common.text import has_control

_LINE_ENDS = re.compile(rb"\r\n|\r|\n")
_FIELD_START = re.compile(rb"(?m)^(?=[^ \t])")  # a line that does not continue a header
_DROPPED = frozenset({b"bcc", b"return-path", b"authentication-results"})
MAX_SUBJECT_CHARS = 998
MAX_MESSAGE_ID_CHARS = 998


@dataclass(frozen=True, slots=True)
class Submitted:
    raw: bytes  # the whole message to store: headers, blank line, body; CRLF line ends
    subject: str  # decoded, for sending details and events
    authors: tuple[str, ...]  # the addresses of From
    message_id: str  # "<...>", the client's or ours
    message_id_given: bool  # the client's


def normalise_line_ends(data: bytes) -> bytes:
    return _LINE_ENDS.sub(b"\r\n", data)


_FIELD_LINE = re.compile(rb"[!-9;-~]+:|[ \t]")  # starts a field, or continues one


def split(data: bytes) -> tuple[list[bytes], bytes]:
    """The header fields (each with its folded lines and final CRLF) and the body. The
    header block ends at the blank line, or, as in Postfix, at the first line that is
    neither a field nor a continuation (that line is then the body's first)."""
    fields: list[bytes] = []
    at = 0
    while at < len(data):
        end = data.find(b"\r\n", at)
        end = len(data) if end == -1 else end + 2
        line = data[at:end]
        if line == b"\r\n":
            return fields, data[end:]
        if not _FIELD_LINE.match(line) or (line[:1] in b" \t" and not fields):
            break
        if line[:1] in b" \t":
            fields[-1] += line
        else:
            fields.append(line if line.endswith(b"\r\n") else line + b"\r\n")
        at = end
    return fields, data[at:]


def _name(field: bytes) -> bytes:
    return field.partition(b":")[0].lower()


def _value(field: bytes) -> str:
    value = field.partition(b":")[2]
    return _LINE_ENDS.sub(b"", value).strip().decode("utf-8", "replace")


def decoded_subject(value: str) -> str:
    """The Subject as a reader sees it: RFC 2047 words decoded, control characters out."""
    try:
        text = str(make_header(decode_header(value)))
    except (ValueError, LookupError, UnicodeError):  # a bad charset or encoding
        text = value
    text = "".join(" " if has_control(c) else c for c in text)
    return text[:MAX_SUBJECT_CHARS]


def parse(data: bytes, envelope_sender: str, now: datetime, new_message_id: str) -> Submitted:
    """``data`` as DATA delivered it (dot-unstuffed); ``new_message_id`` is used when the
    message has none."""
    fields, body = split(normalise_line_ends(data))
    kept = [
        f for f in fields if _name(f) not in _DROPPED and not _name(f).startswith(b"x-postwire-")
    ]
    by_name: dict[bytes, list[str]] = {}
    for field in kept:
        by_name.setdefault(_name(field), []).append(_value(field))

    added: list[bytes] = []
    authors = tuple(a for _, a in getaddresses(by_name.get(b"from", [])) if a)
    if b"from" not in by_name:
        added.append(b"From: %s\r\n" % envelope_sender.encode("utf-8"))
        authors = (envelope_sender,)
    if b"date" not in by_name:
        added.append(b"Date: %s\r\n" % format_datetime(now).encode("ascii"))
    message_id = (by_name.get(b"message-id") or [""])[0].strip()
    given = bool(message_id)
    if has_control(message_id) or len(message_id) > MAX_MESSAGE_ID_CHARS:
        raise InvalidValue("the Message-ID header is not valid (control characters, or too long)")
    if not given:
        message_id = new_message_id
        added.append(b"Message-ID: %s\r\n" % message_id.encode("ascii"))
    subject = decoded_subject((by_name.get(b"subject") or [""])[0])
    raw = b"".join((*kept, *added, b"\r\n", body))
    return Submitted(raw, subject, authors, message_id, given)
