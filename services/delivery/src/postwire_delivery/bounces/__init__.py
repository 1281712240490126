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

Modules, each importing only those before it: ``report`` (the value types and limits),
``parts`` (the report's MIME parts and header fields), ``original`` (which message of ours,
VERP), ``recipients`` (one recipient's status code, words and ``DeliveryStatus``), ``dsn``
(DSNs and ARF), ``plain_text`` (the MTAs' own reports), ``auto_reply`` (RFC 3834).
"""

from __future__ import annotations

from dataclasses import replace
from email import message_from_bytes
from email.message import Message

from postwire_delivery.bounces.auto_reply import auto_reply_report
from postwire_delivery.bounces.dsn import complaint_report, dsn_report
from postwire_delivery.bounces.original import VERP_PREFIX, verp_env_id, with_original
from postwire_delivery.bounces.parts import own_parts
from postwire_delivery.bounces.plain_text import plain_text_report
from postwire_delivery.bounces.report import (
    MAX_BYTES,
    BounceReport,
    Kind,
    MatchedBy,
    Recipient,
)


def parse_bounce(raw: bytes, envelope_rcpt: str) -> BounceReport:
    """Read one message received at the bounce MX; never raises."""
    try:
        report = _read(message_from_bytes(raw[:MAX_BYTES]))
    except Exception:  # untrusted input: the email package raises on some malformed MIME
        report = BounceReport(Kind.UNKNOWN, "unparseable")
    verp = verp_env_id(envelope_rcpt)
    return replace(report, env_id=verp, matched_by=MatchedBy.VERP) if verp else report


def _read(msg: Message) -> BounceReport:
    parts = own_parts(msg)
    found = (
        complaint_report(parts)
        or dsn_report(parts)
        or plain_text_report(msg, parts)
        or auto_reply_report(msg)
        or BounceReport(Kind.UNKNOWN, "")
    )
    return with_original(found, msg, parts)


__all__ = [
    "VERP_PREFIX",
    "BounceReport",
    "Kind",
    "MatchedBy",
    "Recipient",
    "parse_bounce",
    "verp_env_id",
]
