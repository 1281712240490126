"""What a bounce or a complaint received by the inbound MX does to the message it names
(pure; table-tested).

================  ===========================================  ==========================
report            when                                         event
================  ===========================================  ==========================
bounce            the message was delivered, the report names  ``failed``, status 2/3/4
                  its recipient (or no one) as ``failed``      from the DSN (2 suppresses)
complaint (ARF)   the message was delivered; Feedback-Type     ``spam_report`` (suppresses)
                  abuse/fraud/virus/other or none, the report
                  names its recipient or no one
delayed           the remote MTA still retries                 nothing
auto-reply        RFC 3834 vacation and the like               nothing
unknown           not a report, or no message of ours          nothing
================  ===========================================  ==========================

A report naming a different recipient than the message's changes nothing: an env_id in a
forwarded or forged report is not enough on its own. Event ids are fixed per message and
kind, so the same DSN received twice (MTAs retry, several MX hosts) makes one event.
A bounce for a message that already failed, or is still queued, changes nothing either:
the message's own attempts decide it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime

from postwire_common.schemas import DeliveryStatus, EventType, MailEvent
from postwire_delivery.bounces import BounceReport, Kind, Recipient
from postwire_delivery.results import Outcome
from postwire_delivery.store import Sent

# Feedback-Type values (RFC 5965, IANA registry) that mean "this recipient did not want it".
_COMPLAINTS = frozenset({"abuse", "fraud", "virus", "other"})
_REPLY_CODE = re.compile(r"\b([45]\d\d)\b")


@dataclass(frozen=True, slots=True)
class Verdict:
    event: MailEvent | None
    reason: str  # why, for the log line and the metric


def env_id_of(report: BounceReport) -> str | None:
    """The env_id a report names: VERP or our header, else the local part of our
    ``Message-ID`` (``<env_id@domain>``, as ingest makes it)."""
    if report.env_id:
        return report.env_id
    if report.message_id:
        local = report.message_id.strip("<>").partition("@")[0]
        return local or None
    return None


def judge(report: BounceReport, sent: Sent | None, now: datetime) -> Verdict:
    if report.kind not in (Kind.BOUNCE, Kind.COMPLAINT):
        return Verdict(None, report.kind.value)
    if sent is None:
        return Verdict(None, "unknown message")
    if report.message_id and not report.env_id and report.message_id != sent.msg_id:
        return Verdict(None, "unknown message")  # the Message-ID only looked like ours
    if sent.outcome is not Outcome.DELIVERED:
        return Verdict(None, "message not delivered")
    mine = [r for r in report.recipients if r.address.lower() == sent.rcpt.lower()]
    if report.recipients and not mine:
        return Verdict(None, "recipient mismatch")
    if report.kind is Kind.COMPLAINT:
        if report.feedback_type not in _COMPLAINTS and report.feedback_type is not None:
            return Verdict(None, "not a complaint")  # e.g. not-spam; bounded: a metric label
        return Verdict(_event(sent, EventType.SPAM_REPORT, now, report), "complaint")
    failed = next((r for r in mine if r.action == "failed"), None)
    if failed is None:
        # A bounce must name the recipient as failed (not delayed or relayed); one that
        # names no recipient is too weak to fail a delivered message.
        return Verdict(None, "no failed recipient")
    return Verdict(_event(sent, EventType.FAILED, now, report, failed), "bounce")


def _event(
    sent: Sent,
    kind: EventType,
    now: datetime,
    report: BounceReport,
    recipient: Recipient | None = None,
) -> MailEvent:
    status = code = None
    err_msg = None
    if recipient is not None:
        status = recipient.status or DeliveryStatus.FAILED
        found = _REPLY_CODE.search(recipient.diagnostic)
        code = int(found.group(1)) if found else None
        detail = " ".join(x for x in (recipient.dsn_status, recipient.diagnostic) if x)
        err_msg = f"bounced after delivery ({report.format}): {detail or 'no reason given'}"
    elif report.feedback_type:
        err_msg = f"complaint ({report.feedback_type})"
    source = "bounce" if kind is EventType.FAILED else "complaint"
    return MailEvent(
        event_id=f"{sent.env_id}:{source}:{kind.value}",
        event=kind,
        env_id=sent.env_id,
        msg_id=sent.msg_id,
        tenant_id=sent.tenant_id,
        account=sent.sender,
        sender=sent.sender,
        rcpt=sent.rcpt,
        label=sent.label,
        status=status,
        err_code=code,
        err_msg=err_msg,
        attempt=sent.attempt,
        recv_time=sent.recv_time,
        time=now,
    )
