"""Mail that arrives at the bounce MX, read as a value (pure; table-tested).

::

    raw bytes (first 512 KB) + envelope recipient
      │
      ├─ message/feedback-report part (RFC 5965 ARF) ........... complaint
      ├─ message/delivery-status part (RFC 3464 DSN) ........... bounce | delayed
      ├─ a known plain-text report (Exim, qmail, Postfix,
      │  Exchange, Gmail, Yahoo) or X-Failed-Recipients ........ bounce | delayed
      ├─ Auto-Submitted, X-Autoreply, vacation subject (3834) .. auto_reply
      └─ anything else, or mail the parser chokes on ........... unknown

The message we sent is found, strongest first, by the VERP envelope recipient
(``bounce+<env_id>@<bounce domain>``), by our ``X-Postwire-Env-Id`` header (or VERP
``Return-Path``/``Original-Mail-From``) in the returned original, and else by the
original's ``Message-ID`` (returned headers, or the report's In-Reply-To/References).

Only the stdlib ``email`` package: flufl.bounce 6.0.0 (maintained, Python >= 3.11) answers a
set of bare addresses per message, without Status or Diagnostic-Code, knows neither ARF nor
auto-replies, and re-raises a detector's exception; we would parse every format again to
classify the failure, which is most of the work.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, replace
from email import message_from_bytes
from email.header import decode_header, make_header
from email.message import Message
from email.parser import HeaderParser
from email.utils import parseaddr
from enum import StrEnum

from postwire_common.schemas import DeliveryStatus
from postwire_delivery.results import Outcome, classify_reply

VERP_PREFIX = "bounce+"
_MAX_BYTES = 512 * 1024  # of the raw message: reports come first, returned originals last
_MAX_TEXT = 64 * 1024  # of each decoded part
_MAX_PARTS = 32
_MAX_RECIPIENTS = 50
_MAX_DIAGNOSTIC = 1000


class Kind(StrEnum):
    BOUNCE = "bounce"  # at least one recipient failed for good
    DELAYED = "delayed"  # the remote MTA still retries: not a failure, ignore
    COMPLAINT = "complaint"
    AUTO_REPLY = "auto_reply"  # vacation notices and the like: never a bounce
    UNKNOWN = "unknown"


class MatchedBy(StrEnum):
    VERP = "verp"
    ENV_ID_HEADER = "env_id_header"
    MESSAGE_ID = "message_id"
    NONE = "none"


@dataclass(frozen=True, slots=True)
class Recipient:
    address: str
    action: str  # DSN Action (failed, delayed, relayed…); "complained" for ARF
    dsn_status: str | None  # enhanced status code, e.g. "5.1.1"
    diagnostic: str  # Diagnostic-Code or the MTA's words, whitespace collapsed
    status: DeliveryStatus | None = None  # 2, 3 or 4 when action is failed


@dataclass(frozen=True, slots=True)
class BounceReport:
    kind: Kind
    format: str  # dsn, arf, exim, qmail, postfix, exchange, gmail, yahoo, …
    recipients: tuple[Recipient, ...] = ()
    env_id: str | None = None
    message_id: str | None = None  # the original's, with angle brackets
    matched_by: MatchedBy = MatchedBy.NONE
    feedback_type: str | None = None  # ARF Feedback-Type, lower case


def parse_bounce(raw: bytes, envelope_rcpt: str) -> BounceReport:
    """Read one message received at the bounce MX; never raises."""
    try:
        report = _read(message_from_bytes(raw[:_MAX_BYTES]))
    except Exception:  # untrusted input: the email package raises on some malformed MIME
        report = BounceReport(Kind.UNKNOWN, "unparseable")
    verp = verp_env_id(envelope_rcpt)
    return replace(report, env_id=verp, matched_by=MatchedBy.VERP) if verp else report


def verp_env_id(address: str) -> str | None:
    """``bounce+<env_id>@domain`` → env_id."""
    match = _VERP.match(parseaddr(address)[1] or address.strip("<> "))
    return match.group(1) if match else None


_VERP = re.compile(rf"^{re.escape(VERP_PREFIX)}([A-Za-z0-9_-]{{1,64}})@", re.IGNORECASE)


def _read(msg: Message) -> BounceReport:
    parts = _own_parts(msg)
    found = (
        _complaint(parts)
        or _dsn(parts)
        or _plain_text_report(msg, parts)
        or _auto_reply(msg)
        or BounceReport(Kind.UNKNOWN, "")
    )
    return _with_original(found, msg, parts)


# ---- the parts of the report itself -------------------------------------------------------


def _own_parts(msg: Message) -> list[Message]:
    """The report's parts breadth-first, not descending into a returned message."""
    parts: list[Message] = []
    todo = [msg]
    while todo and len(parts) < _MAX_PARTS:
        part = todo.pop(0)
        parts.append(part)
        if part.get_content_maintype() == "multipart" and isinstance(part.get_payload(), list):
            todo.extend(p for p in part.get_payload() if isinstance(p, Message))
    return parts


def _decoded(part: Message) -> str:
    payload = part.get_payload(decode=True)
    if not isinstance(payload, bytes):
        return ""
    try:
        text = payload[:_MAX_TEXT].decode(part.get_content_charset() or "utf-8", "replace")
    except LookupError:  # a charset Python does not know
        text = payload[:_MAX_TEXT].decode("utf-8", "replace")
    return text.replace("\r\n", "\n")


def _texts(parts: list[Message]) -> str:
    return "\n".join(_decoded(p) for p in parts if p.get_content_type() == "text/plain")


def _header(msg: Message, name: str, limit: int = _MAX_DIAGNOSTIC) -> str:
    return " ".join(str(msg.get(name, "")).split())[:limit]


def _field_blocks(part: Message) -> list[Message]:
    """The header blocks of a message/delivery-status or message/feedback-report part."""
    payload = part.get_payload()
    if not isinstance(payload, list):  # not split by the parser (e.g. base64): do it here
        return _split_blocks(_decoded(part))
    blocks: list[Message] = []
    for block in payload[: _MAX_RECIPIENTS + 1]:
        if isinstance(block, Message):
            blocks.append(block)
            rest = block.get_payload()  # message/global-delivery-status parses as one message
            if isinstance(rest, str) and rest.strip():
                blocks.extend(_split_blocks(rest))
    return blocks


def _split_blocks(text: str) -> list[Message]:
    chunks = re.split(r"\n[ \t]*\n", text.replace("\r\n", "\n"))[: _MAX_RECIPIENTS + 1]
    return [HeaderParser().parsestr(chunk.strip()) for chunk in chunks if chunk.strip()]


# ---- ARF complaints (RFC 5965) ------------------------------------------------------------


def _complaint(parts: list[Message]) -> BounceReport | None:
    report = _first(parts, "message/feedback-report")
    if report is None:
        return None
    fields = next(iter(_field_blocks(report)), Message())
    rcpt = _address(_header(fields, "Original-Rcpt-To")) or _address(_original_field(parts, "To"))
    recipients = (Recipient(rcpt, "complained", None, ""),) if rcpt else ()
    return BounceReport(
        Kind.COMPLAINT,
        "arf",
        recipients,
        env_id=verp_env_id(_header(fields, "Original-Mail-From")),
        feedback_type=_header(fields, "Feedback-Type").lower() or None,
    )


def _first(parts: list[Message], content_type: str) -> Message | None:
    return next((p for p in parts if p.get_content_type() == content_type), None)


def _address(value: str) -> str:
    address = parseaddr(value)[1] or value.strip("<> ")
    return address[:320] if "@" in address else ""


# ---- DSNs (RFC 3464) ----------------------------------------------------------------------

_DSN_TYPES = ("message/delivery-status", "message/global-delivery-status")


def _dsn(parts: list[Message]) -> BounceReport | None:
    status_parts = [p for p in parts if p.get_content_type() in _DSN_TYPES]
    recipients = tuple(
        _dsn_recipient(block)
        for part in status_parts
        for block in _field_blocks(part)
        if block.get("Final-Recipient") or block.get("Original-Recipient")
    )[:_MAX_RECIPIENTS]
    if not recipients:
        return None  # not a DSN, or one we cannot read: the plain-text readers may
    return BounceReport(_kind(recipients), "dsn", recipients)


def _dsn_recipient(block: Message) -> Recipient:
    # Original-Recipient is the address we sent to, before any forwarding rewrote it.
    typed = _header(block, "Original-Recipient") or _header(block, "Final-Recipient")
    action = (_header(block, "Action").lower().split() or [""])[0]
    action = "failed" if action == "error" else action  # OpenSMTPD's non-standard word
    status = _ENHANCED.search(_header(block, "Status"))
    diagnostic = _header(block, "Diagnostic-Code")
    if ";" in diagnostic:  # "smtp; 550 5.1.1 …": drop the diagnostic type
        diagnostic = diagnostic.split(";", 1)[1].strip()
    return _recipient(
        _address(typed.rsplit(";", 1)[-1]), action, status.group(1) if status else None, diagnostic
    )


def _kind(recipients: tuple[Recipient, ...]) -> Kind:
    actions = {r.action for r in recipients}
    if "failed" in actions:
        return Kind.BOUNCE
    return Kind.DELAYED if "delayed" in actions else Kind.UNKNOWN


# Not inside an IP address: "(#5.1.1)", "550-5.1.1", "Status: 5.1.1." but not "10.4.5.6".
_ENHANCED = re.compile(r"(?<![\w.])([245]\.\d{1,3}\.\d{1,3})(?!\.?\d)")
# Report prose for an address that does not exist, beyond results._NO_SUCH_USER's reply words.
_NO_ACCOUNT = re.compile(r"doesn't have an? \S+ account|no mailbox here by that name", re.I)
# A receiver refusing by policy under X.7.x ("not accepted for policy reasons") is a
# reputation block; results._SPAM does not list the word, as a sync 5.7.1 policy is vaguer.
_POLICY = re.compile(r"\bpolic(?:y|ies)\b", re.IGNORECASE)


_REPLY_CODE = re.compile(r"([245]\d\d)[ -]([245]\.\d{1,3}\.\d{1,3})(?=\s)")


def _without_repeated_codes(text: str) -> str:
    """``550-5.7.1 a\n550-5.7.1 b`` → ``550-5.7.1 a b``: the code repeated on each line."""
    first = _REPLY_CODE.search(text)
    if first is None:
        return text
    repeated = re.compile(rf"\s+{first[1]}[ -]{re.escape(first[2])}(?=\s)")
    return text[: first.end()] + repeated.sub("", text[first.end() :])


def _recipient(address: str, action: str, dsn_status: str | None, diagnostic: str) -> Recipient:
    diagnostic = " ".join(_without_repeated_codes(diagnostic).split())[:_MAX_DIAGNOSTIC]
    if dsn_status is None and (found := _ENHANCED.search(diagnostic)):
        dsn_status = found.group(1)
    status = _failure_status(dsn_status, diagnostic) if action == "failed" else None
    return Recipient(address, action, dsn_status, diagnostic, status)


def _failure_status(dsn_status: str | None, diagnostic: str) -> DeliveryStatus:
    """The same mapping as a synchronous 5xx, with the DSN's Status in front."""
    text = f"{dsn_status} {diagnostic}" if dsn_status else diagnostic
    result = classify_reply(550, text)
    if result.outcome is not Outcome.HARD or result.status is None:
        return DeliveryStatus.FAILED
    policy_block = (dsn_status or "").startswith("5.7.") and _POLICY.search(text)
    if result.status is DeliveryStatus.FAILED and policy_block:
        return DeliveryStatus.SPAM
    if result.status is DeliveryStatus.FAILED and _NO_ACCOUNT.search(text):
        return DeliveryStatus.INVALID_ADDRESS
    return result.status


# ---- plain-text reports that real MTAs send -----------------------------------------------

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


def _plain_text_report(msg: Message, parts: list[Message]) -> BounceReport | None:
    text = _texts(parts)
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
    addresses = _header(msg, "X-Failed-Recipients").split(",")
    return [(a.strip(), "") for a in addresses if "@" in a]


def _text_report(name: str, action: str, found: list[tuple[str, str]]) -> BounceReport:
    recipients = tuple(
        _recipient(address, action, None, diagnostic)
        for address, diagnostic in found[:_MAX_RECIPIENTS]
    )
    return BounceReport(_kind(recipients), name, recipients)


# ---- auto-replies (RFC 3834 and what vacation programs do) ---------------------------------

_VACATION = _re(
    r"^\s*(?:out of (?:the )?office|automatic reply|auto(?:matic)?[- ]?(?:reply|response)|"
    r"auto:|autoreply|vacation|away from|abwesenheit|réponse automatique|"
    r"respuesta automática|risposta automatica|automatisch antwoord)"
)


def _auto_reply(msg: Message) -> BounceReport | None:
    signal = next(
        (
            name
            for name, present in (
                ("auto-submitted", _header(msg, "Auto-Submitted").lower() not in ("", "no")),
                ("x-autoreply", bool(_header(msg, "X-Autoreply"))),
                ("x-autorespond", bool(_header(msg, "X-Autorespond"))),
                ("precedence", _header(msg, "Precedence").lower() == "auto_reply"),
                ("subject", bool(_VACATION.search(_subject(msg)))),
            )
            if present
        ),
        None,
    )
    return BounceReport(Kind.AUTO_REPLY, signal) if signal else None


def _subject(msg: Message) -> str:
    raw = _header(msg, "Subject")
    try:
        return str(make_header(decode_header(raw)))
    except (ValueError, LookupError, UnicodeError):  # a broken encoded-word: read it raw
        return raw


# ---- which message of ours this is about ----------------------------------------------------

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
            blobs.append(_decoded(part))
        elif part.get_content_maintype() == "message" and content_type not in (
            *_DSN_TYPES,
            "message/feedback-report",
        ):
            inner = part.get_payload()
            if isinstance(inner, list) and inner and isinstance(inner[0], Message):
                blobs.append("".join(f"{k}: {v}\n" for k, v in inner[0].items()))
    blobs.append(_texts(parts))
    return "\n".join(blobs)


def _original_field(parts: list[Message], name: str) -> str:
    match = re.search(rf"^{name}:[ \t]*(.*(?:\n[ \t]+.*)*)", _original_headers(parts), re.I | re.M)
    return " ".join(match[1].split()) if match else ""


def _with_original(report: BounceReport, msg: Message, parts: list[Message]) -> BounceReport:
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
    in_reply_to = _ANY_ID.findall(_header(msg, "In-Reply-To"))
    if in_reply_to:
        return str(in_reply_to[0])
    references = _ANY_ID.findall(_header(msg, "References", _MAX_TEXT))
    return str(references[-1]) if references else None
