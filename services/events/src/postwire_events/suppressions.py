"""Suppression lists: which events add an address, and the changes ingest is told of.

=================  ==========================  ==============
event              when                        reason
=================  ==========================  ==============
failed             status 2 (invalid address)  hard_bounce
spam_report        always                      complaint
unsubscribe        always                      unsubscribe
(API)              POST /v1/suppressions       manual
=================  ==========================  ==============

Sending to a suppressed address is answered ``suppressed`` by ingest and never reaches
SMTP (Devino: "automatically filters unsubscribed and hard-bounced addresses"); the
list is the events service's, ingest keeps a copy from ``SuppressionChanges``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from postwire_common.broker import topology
from postwire_common.broker.publish import Outgoing
from postwire_common.schemas import (
    DeliveryStatus,
    EventType,
    MailEvent,
    SuppressionChange,
    SuppressionChanges,
    SuppressionReason,
)


@dataclass(frozen=True, slots=True)
class Suppression:
    tenant_id: str
    address: str  # lower-cased
    reason: SuppressionReason
    source_env_id: str | None
    time: datetime


def reason_for(event: MailEvent) -> SuppressionReason | None:
    """Why ``event`` suppresses its recipient, or None when it does not."""
    if event.event is EventType.FAILED and event.status == DeliveryStatus.INVALID_ADDRESS:
        return SuppressionReason.HARD_BOUNCE
    if event.event is EventType.SPAM_REPORT:
        return SuppressionReason.COMPLAINT
    if event.event is EventType.UNSUBSCRIBE:
        return SuppressionReason.UNSUBSCRIBE
    return None


def from_events(events: Sequence[MailEvent]) -> list[Suppression]:
    found = []
    for event in events:
        reason = reason_for(event)
        if reason is not None:
            found.append(
                Suppression(event.tenant_id, event.rcpt.lower(), reason, event.env_id, event.time)
            )
    return found


def announce(changes: Sequence[SuppressionChange]) -> list[Outgoing]:
    """The bus messages telling ingest of ``changes`` (written to the outbox)."""
    if not changes:
        return []
    return [
        Outgoing(
            topology.SUPPRESSIONS.name,
            topology.SUPPRESSIONS_KEY,
            SuppressionChanges(changes=list(changes)),
        )
    ]
