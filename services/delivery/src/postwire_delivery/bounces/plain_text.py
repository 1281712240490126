"""The plain-text reports real MTAs send instead of a DSN, and ``X-Failed-Recipients``.

Each known format (Exim, qmail, Yahoo, Postfix, Exchange, Gmail) is a marker that names
it, a marker that makes it a delay warning, and a reader of ``(address, diagnostic)``
pairs; all are read only in the report's own text, before the returned copy begins. A
format whose reader finds no address takes them from the ``X-Failed-Recipients`` header,
which is a report of its own when no format is known.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from email.message import Message

from postwire_delivery.bounces.parts import header, texts
from postwire_delivery.bounces.recipients import kind, recipient
from postwire_delivery.bounces.report import MAX_RECIPIENTS, BounceReport

_Reader = Callable[[str], list[tuple[str, str]]]  # report text → [(address, diagnostic)]
# Greedy, and ending in a word character, so "to ann@example.org." stops before the dot.
_ADDR = r"[^\s<>@()\"',;:]+@[\w.-]*\w"
# Where a report's own text ends and the returned copy begins.
_COPY = re.compile(
    r"^-+ ?(?:This is a copy of|Below this line is a copy of|Original message)|"
    r"^Original message headers:|^-+ ?The header of the original message",
    re.IGNORECASE | re.MULTILINE,
)


def _angle_blocks(text: str) -> list[tuple[str, str]]:
    """qmail, Yahoo and Postfix: ``<addr>: what happened``, continued up to a blank line."""
    pattern = rf"^<({_ADDR})>:[ \t]*(.*(?:\n(?![ \t]*\n|<{_ADDR}>:).*)*)"
    return [(m[1], m[2]) for m in re.finditer(pattern, text, re.MULTILINE)]


def _indented_blocks(text: str) -> list[tuple[str, str]]:
    """Exim: an address indented by two spaces, its reasons by four."""
    start = re.search(r"address\(es\) failed:|not yet been delivered (?:is|are):", text)
    if start is None:
        return []
    pattern = rf"^  <?({_ADDR})>?:?[ \t]*\n((?:[ \t]{{3,}}.*\n?)*)"
    return [(m[1], m[2]) for m in re.finditer(pattern, text[start.end() :], re.MULTILINE)]


def _exchange_blocks(text: str) -> list[tuple[str, str]]:
    """Exchange: the address alone on a line, then ``#550 5.1.10 …##`` or ``Remote Server
    returned '550 5.1.10 …'`` (the admin section repeats the address with the code)."""
    pattern = (
        rf"^[ \t]*({_ADDR})(?:[ \t]+\([^)\n]*\))?[ \t]*\n"
        r"[ \t]*(?:Remote Server returned[ \t]*'|#)?([245]\d\d[ -][245]\.\d{1,3}\.\d{1,3}.*?)'?"
        r"[ \t]*(?:##.*)?$"
    )
    return [(m[1], m[2]) for m in re.finditer(pattern, text, re.MULTILINE)]


def _gmail_blocks(text: str) -> list[tuple[str, str]]:
    """Gmail: the address in a sentence (or indented, in the older report), then the reply."""
    address = re.search(
        rf"(?:delivered to|message to|delivering your message to)\s+<?({_ADDR})>?[\s.,]|"
        rf"following recipient[^:\n]*:\s*\n\s*<?({_ADDR})>?\s*$",
        text,
        re.MULTILINE,
    )
    if address is None:
        return []
    reply = re.search(
        r"(?:The response (?:from the remote server )?was|"
        r"The error that the other server returned was):[ \t]*\n+((?:.+\n?)+)",
        text,
    )
    return [(address[1] or address[2], reply[1] if reply else "")]


@dataclass(frozen=True, slots=True)
class _TextFormat:
    name: str
    marker: re.Pattern[str]
    delayed: re.Pattern[str]
    read: _Reader


def _re(pattern: str) -> re.Pattern[str]:
    return re.compile(pattern, re.IGNORECASE | re.MULTILINE)


_NEVER = re.compile(r"(?!)")
_TEXT_FORMATS = (
    _TextFormat(
        "exim",
        _re(r"created automatically by mail delivery software"),
        _re(r"has not yet been delivered"),
        _indented_blocks,
    ),
    _TextFormat("qmail", _re(r"This is the qmail-send program"), _NEVER, _angle_blocks),
    _TextFormat(
        "yahoo", _re(r"unable to deliver your message to the following"), _NEVER, _angle_blocks
    ),
    _TextFormat(
        "postfix",
        _re(r"^This is the mail system at host|^[ \t]*The mail system[ \t]*$"),
        _re(r"THIS IS A WARNING ONLY"),
        _angle_blocks,
    ),
    _TextFormat(
        "exchange",
        _re(r"Delivery has failed to these recipients|did not reach some or all of the"),
        _NEVER,
        _exchange_blocks,
    ),
    _TextFormat(
        "gmail",
        _re(
            r"^\*\* (?:Address not found|Message (?:not delivered|blocked|delayed))|"
            r"Delivery to the following recipient"
        ),
        _re(r"Message delayed|has been delayed|temporary problem delivering"),
        _gmail_blocks,
    ),
)


def plain_text_report(msg: Message, parts: list[Message]) -> BounceReport | None:
    text = texts(parts)
    own = text[: m.start()] if (m := _COPY.search(text)) else text
    for fmt in _TEXT_FORMATS:
        if fmt.marker.search(own):
            action = "delayed" if fmt.delayed.search(own) else "failed"
            found = fmt.read(own) or _failed_recipients_header(msg)
            if found:
                return _text_report(fmt.name, action, found)
    found = _failed_recipients_header(msg)
    return _text_report("x-failed-recipients", "failed", found) if found else None


def _failed_recipients_header(msg: Message) -> list[tuple[str, str]]:
    addresses = header(msg, "X-Failed-Recipients").split(",")
    return [(a.strip(), "") for a in addresses if "@" in a]


def _text_report(name: str, action: str, found: list[tuple[str, str]]) -> BounceReport:
    recipients = tuple(
        recipient(address, action, None, diagnostic)
        for address, diagnostic in found[:MAX_RECIPIENTS]
    )
    return BounceReport(kind(recipients), name, recipients)
