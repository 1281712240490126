"""Which events suppress their recipient, and why."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from postwire_common.schemas import DeliveryStatus, EventType, MailEvent, SuppressionReason
from postwire_events.suppressions import reason_for

NOW = datetime.now(UTC)


@pytest.mark.parametrize(
    ("kind", "status", "reason"),
    [
        (EventType.FAILED, DeliveryStatus.INVALID_ADDRESS, SuppressionReason.HARD_BOUNCE),
        (EventType.FAILED, DeliveryStatus.SPAM, None),
        (EventType.FAILED, DeliveryStatus.FAILED, None),
        (EventType.SOFT_BOUNCE, None, None),
        (EventType.INVALID, DeliveryStatus.INVALID_ADDRESS, None),  # suppressed already
        (EventType.SPAM_REPORT, None, SuppressionReason.COMPLAINT),
        (EventType.UNSUBSCRIBE, None, SuppressionReason.UNSUBSCRIBE),
        (EventType.DELIVERED, DeliveryStatus.DELIVERED, None),
        (EventType.OPEN, None, None),
    ],
)
def test_reason_for(
    kind: EventType, status: DeliveryStatus | None, reason: SuppressionReason | None
) -> None:
    event = MailEvent(
        event_id="e", event=kind, env_id="e", msg_id="<e@x>", tenant_id="t", account="s@x",
        sender="s@x", rcpt="r@y", status=status, recv_time=NOW, time=NOW,
    )  # fmt: skip
    assert reason_for(event) is reason
