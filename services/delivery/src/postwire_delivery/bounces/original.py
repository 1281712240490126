"""Which message of ours a report is about: its env_id, else its Message-ID.

Strongest first: our ``X-Postwire-Env-Id`` header in the returned original, the VERP
address (``bounce+<env_id>@<bounce domain>``) the report names (ARF ``Original-Mail-From``)
or the original's ``Return-Path`` carries, and else the original's ``Message-ID`` (in the
returned headers, or the report's In-Reply-To/References). ``parse_bounce`` puts the
envelope recipient's VERP env_id above all of them.
"""

from __future__ import annotations

import re
from dataclasses import replace
from email.message import Message
from email.utils import parseaddr

from postwire_delivery.bounces.parts import DSN_TYPES, decoded, header, texts
from postwire_delivery.bounces.report import MAX_TEXT, BounceReport, MatchedBy

VERP_PREFIX = "bounce+"


def verp_env_id(address: str) -> str | None:
    """``bounce+<env_id>@domain`` → env_id."""
    match = _VERP.match(parseaddr(address)[1] or address.strip("<> "))
    return match.group(1) if match else None


_VERP = re.compile(rf"^{re.escape(VERP_PREFIX)}([A-Za-z0-9_-]{{1,64}})@", re.IGNORECASE)
_ENV_ID = re.compile(r"^X-Postwire-Env-Id:[ \t]*([A-Za-z0-9_-]{1,64})", re.I | re.M)
_MESSAGE_ID = re.compile(r"^Message-ID:[ \t]*(?:\n[ \t]+)?(<[^<>\s]{1,250}>)", re.I | re.M)
_RETURN_PATH = re.compile(r"^Return-Path:[ \t]*(<[^<>\s]{1,320}>)", re.I | re.M)
_ANY_ID = re.compile(r"<[^<>\s]{1,250}>")


def _original_headers(parts: list[Message]) -> str:
    """The returned original's headers as text: attached parts first, then inline copies."""
    blobs: list[str] = []
    for part in parts:
        content_type = part.get_content_type()
        if content_type in ("text/rfc822-headers", "message/global-headers"):
            blobs.append(decoded(part))
        elif part.get_content_maintype() == "message" and content_type not in (
            *DSN_TYPES,
            "message/feedback-report",
        ):
            inner = part.get_payload()
            if isinstance(inner, list) and inner and isinstance(inner[0], Message):
                blobs.append("".join(f"{k}: {v}\n" for k, v in inner[0].items()))
    blobs.append(texts(parts))
    return "\n".join(blobs)


def original_field(parts: list[Message], name: str) -> str:
    match = re.search(rf"^{name}:[ \t]*(.*(?:\n[ \t]+.*)*)", _original_headers(parts), re.I | re.M)
    return " ".join(match[1].split()) if match else ""


def with_original(report: BounceReport, msg: Message, parts: list[Message]) -> BounceReport:
    headers = _original_headers(parts)
    message_id = _find(_MESSAGE_ID, headers) or _replied_to(msg)
    env_id = _find(_ENV_ID, headers)
    if env_id:
        matched_by = MatchedBy.ENV_ID_HEADER
    elif env_id := report.env_id or verp_env_id(_find(_RETURN_PATH, headers) or ""):
        matched_by = MatchedBy.VERP
    else:
        matched_by = MatchedBy.MESSAGE_ID if message_id else MatchedBy.NONE
    return replace(report, env_id=env_id, message_id=message_id, matched_by=matched_by)


def _find(pattern: re.Pattern[str], text: str) -> str | None:
    match = pattern.search(text)
    return match[1] if match else None


def _replied_to(msg: Message) -> str | None:
    """In-Reply-To, else the last of References: the message this one answers."""
    in_reply_to = _ANY_ID.findall(header(msg, "In-Reply-To"))
    if in_reply_to:
        return str(in_reply_to[0])
    references = _ANY_ID.findall(header(msg, "References", MAX_TEXT))
    return str(references[-1]) if references else None
