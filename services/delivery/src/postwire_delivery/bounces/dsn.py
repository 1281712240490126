"""The machine-readable reports: RFC 3464 DSNs and RFC 5965 ARF complaints.

Both carry blocks of header fields in a part of their own (``message/delivery-status`` or
``message/global-delivery-status``; ``message/feedback-report``): one block per recipient
in a DSN, one for the whole complaint in ARF.
"""

from __future__ import annotations

from email.message import Message
from email.utils import parseaddr

from postwire_delivery.bounces.original import original_field, verp_env_id
from postwire_delivery.bounces.parts import DSN_TYPES, field_blocks, header
from postwire_delivery.bounces.recipients import ENHANCED, kind, recipient
from postwire_delivery.bounces.report import MAX_RECIPIENTS, BounceReport, Kind, Recipient

# ---- ARF complaints (RFC 5965) ------------------------------------------------------------


def complaint_report(parts: list[Message]) -> BounceReport | None:
    report = _first(parts, "message/feedback-report")
    if report is None:
        return None
    fields = next(iter(field_blocks(report)), Message())
    rcpt = _address(header(fields, "Original-Rcpt-To")) or _address(original_field(parts, "To"))
    recipients = (Recipient(rcpt, "complained", None, ""),) if rcpt else ()
    return BounceReport(
        Kind.COMPLAINT,
        "arf",
        recipients,
        env_id=verp_env_id(header(fields, "Original-Mail-From")),
        feedback_type=header(fields, "Feedback-Type").lower() or None,
    )


def _first(parts: list[Message], content_type: str) -> Message | None:
    return next((p for p in parts if p.get_content_type() == content_type), None)


def _address(value: str) -> str:
    address = parseaddr(value)[1] or value.strip("<> ")
    return address[:320] if "@" in address else ""


# ---- DSNs (RFC 3464) ----------------------------------------------------------------------


def dsn_report(parts: list[Message]) -> BounceReport | None:
    status_parts = [p for p in parts if p.get_content_type() in DSN_TYPES]
    recipients = tuple(
        _dsn_recipient(block)
        for part in status_parts
        for block in field_blocks(part)
        if block.get("Final-Recipient") or block.get("Original-Recipient")
    )[:MAX_RECIPIENTS]
    if not recipients:
        return None  # not a DSN, or one we cannot read: the plain-text readers may
    return BounceReport(kind(recipients), "dsn", recipients)


def _dsn_recipient(block: Message) -> Recipient:
    # Original-Recipient is the address we sent to, before any forwarding rewrote it.
    typed = header(block, "Original-Recipient") or header(block, "Final-Recipient")
    action = (header(block, "Action").lower().split() or [""])[0]
    action = "failed" if action == "error" else action  # OpenSMTPD's non-standard word
    status = ENHANCED.search(header(block, "Status"))
    diagnostic = header(block, "Diagnostic-Code")
    if ";" in diagnostic:  # "smtp; 550 5.1.1 …": drop the diagnostic type
        diagnostic = diagnostic.split(";", 1)[1].strip()
    return recipient(
        _address(typed.rsplit(";", 1)[-1]), action, status.group(1) if status else None, diagnostic
    )
