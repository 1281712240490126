"""How events move a message's status (ARCHITECTURE.md, "A message's life").

``queued -> (soft_bounced -> queued)* -> delivered | failed | invalid``, or ``suppressed``
at accept time. Both of the last come from ``invalid`` events: ingest's for a suppressed
address carries no SMTP code, delivery's for an undeliverable domain (NXDOMAIN, null MX)
carries the code it stands for (550, 556). Status only moves forward: a higher rank wins,
equal ranks below terminal go by time, and terminal never changes (a late soft_bounce
never overwrites delivered) with one exception: ``failed`` ranks above the other terminal
statuses, because a bounce received after delivery (a DSN to the inbound MX) turns
``delivered`` into ``failed``; delivery itself never records both for one message.
Tracking events (rank 0) never touch the status.
"""

from __future__ import annotations

from postwire_common.schemas import EventType, MailEvent

TERMINAL_RANK = 2

STATUS_OF: dict[EventType, tuple[str, int]] = {
    EventType.REQUEST: ("queued", 1),
    EventType.SOFT_BOUNCE: ("soft_bounced", 1),
    EventType.DELIVERED: ("delivered", TERMINAL_RANK),
    EventType.FAILED: ("failed", TERMINAL_RANK + 1),
    EventType.INVALID: ("suppressed", TERMINAL_RANK),
}

STATUSES = ("queued", "soft_bounced", "delivered", "failed", "invalid", "suppressed")


def status_of(event: MailEvent) -> tuple[str, int] | None:
    """The (status, rank) an event moves its message to; None for tracking events."""
    if event.event is EventType.INVALID and event.err_code is not None:
        return ("invalid", TERMINAL_RANK)  # undeliverable, decided by delivery
    return STATUS_OF.get(event.event)
