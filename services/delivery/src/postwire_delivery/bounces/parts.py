"""The report's own MIME parts, decoded within the limits, and its header fields.

A report is read from its parts breadth-first, never descending into the returned message;
the machine-readable parts (``message/delivery-status``, ``message/feedback-report``) hold
blocks of header fields, split here whether or not the ``email`` parser split them.
"""

from __future__ import annotations

import re
from email.message import Message
from email.parser import HeaderParser

from postwire_delivery.bounces.report import (
    MAX_DIAGNOSTIC,
    MAX_PARTS,
    MAX_RECIPIENTS,
    MAX_TEXT,
)

DSN_TYPES = ("message/delivery-status", "message/global-delivery-status")


def own_parts(msg: Message) -> list[Message]:
    """The report's parts breadth-first, not descending into a returned message."""
    parts: list[Message] = []
    todo = [msg]
    while todo and len(parts) < MAX_PARTS:
        part = todo.pop(0)
        parts.append(part)
        if part.get_content_maintype() == "multipart" and isinstance(part.get_payload(), list):
            todo.extend(p for p in part.get_payload() if isinstance(p, Message))
    return parts


def decoded(part: Message) -> str:
    payload = part.get_payload(decode=True)
    if not isinstance(payload, bytes):
        return ""
    try:
        text = payload[:MAX_TEXT].decode(part.get_content_charset() or "utf-8", "replace")
    except LookupError:  # a charset Python does not know
        text = payload[:MAX_TEXT].decode("utf-8", "replace")
    return text.replace("\r\n", "\n")


def texts(parts: list[Message]) -> str:
    return "\n".join(decoded(p) for p in parts if p.get_content_type() == "text/plain")


def header(msg: Message, name: str, limit: int = MAX_DIAGNOSTIC) -> str:
    return " ".join(str(msg.get(name, "")).split())[:limit]


def field_blocks(part: Message) -> list[Message]:
    """The header blocks of a message/delivery-status or message/feedback-report part."""
    payload = part.get_payload()
    if not isinstance(payload, list):  # not split by the parser (e.g. base64): do it here
        return _split_blocks(decoded(part))
    blocks: list[Message] = []
    for block in payload[: MAX_RECIPIENTS + 1]:
        if isinstance(block, Message):
            blocks.append(block)
            rest = block.get_payload()  # message/global-delivery-status parses as one message
            if isinstance(rest, str) and rest.strip():
                blocks.extend(_split_blocks(rest))
    return blocks


def _split_blocks(text: str) -> list[Message]:
    chunks = re.split(r"\n[ \t]*\n", text.replace("\r\n", "\n"))[: MAX_RECIPIENTS + 1]
    return [HeaderParser().parsestr(chunk.strip()) for chunk in chunks if chunk.strip()]
