"""How events move a message's status (ARCHITECTURE.md, "A message's life").

``queued -> (soft_bounced -> queued)* -> delivered | failed``, or ``suppressed`` at accept
time. Status only moves forward: a higher rank wins, equal ranks below terminal go by
time, and terminal never changes (a late soft_bounce never overwrites delivered).
Tracking events (rank 0) never touch the status.
"""

from __future__ import annotations

from postwire_common.schemas import EventType

TERMINAL_RANK = 2

STATUS_OF: dict[EventType, tuple[str, int]] = {
    EventType.REQUEST: ("queued", 1),
    EventType.SOFT_BOUNCE: ("soft_bounced", 1),
    EventType.DELIVERED: ("delivered", TERMINAL_RANK),
    EventType.FAILED: ("failed", TERMINAL_RANK),
    EventType.INVALID: ("suppressed", TERMINAL_RANK),
}

STATUSES = ("queued", "soft_bounced", "delivered", "failed", "suppressed")
