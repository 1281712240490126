"""A message's status as events move it (ARCHITECTURE.md, "A message's life")."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from postwire_common.schemas import EventType, MailEvent
from postwire_events.status import STATUS_OF, STATUSES, TERMINAL_RANK, status_of

# queued -> (soft_bounced -> queued)* -> delivered | failed; or suppressed (invalid event)
LIFE_CYCLE = [
    (EventType.REQUEST, "queued", False),
    (EventType.SOFT_BOUNCE, "soft_bounced", False),
    (EventType.DELIVERED, "delivered", True),
    (EventType.FAILED, "failed", True),
    (EventType.INVALID, "suppressed", True),
]
TRACKING = [EventType.OPEN, EventType.CLICK, EventType.UNSUBSCRIBE, EventType.SPAM_REPORT]


@pytest.mark.parametrize(("event", "status", "terminal"), LIFE_CYCLE)
def test_status_of_each_delivery_event(event: EventType, status: str, terminal: bool) -> None:
    name, rank = STATUS_OF[event]
    assert name == status
    assert (rank >= TERMINAL_RANK) is terminal


@pytest.mark.parametrize(("event", "status", "terminal"), LIFE_CYCLE)
def test_non_terminal_ranks_are_below_terminal(
    event: EventType, status: str, terminal: bool
) -> None:
    rank = STATUS_OF[event][1]
    if not terminal:
        assert 0 < rank < TERMINAL_RANK


def test_a_bounce_after_delivery_turns_delivered_into_failed() -> None:
    # A DSN received after delivery: failed must outrank delivered (and only failed may).
    assert STATUS_OF[EventType.FAILED][1] > STATUS_OF[EventType.DELIVERED][1]
    assert STATUS_OF[EventType.DELIVERED][1] == STATUS_OF[EventType.INVALID][1] == TERMINAL_RANK


def test_a_late_soft_bounce_cannot_outrank_delivered() -> None:
    assert STATUS_OF[EventType.SOFT_BOUNCE][1] < STATUS_OF[EventType.DELIVERED][1]
    assert STATUS_OF[EventType.REQUEST][1] < STATUS_OF[EventType.FAILED][1]


def test_a_retry_after_a_soft_bounce_can_go_back_to_queued() -> None:
    # queued and soft_bounced share a rank, so the later one wins by time
    assert STATUS_OF[EventType.REQUEST][1] == STATUS_OF[EventType.SOFT_BOUNCE][1]


@pytest.mark.parametrize("event", TRACKING)
def test_tracking_events_do_not_change_the_status(event: EventType) -> None:
    assert event not in STATUS_OF


def test_every_event_type_is_either_a_status_or_tracking() -> None:
    assert set(STATUS_OF) | set(TRACKING) == set(EventType)


def test_statuses_are_exactly_the_life_cycle() -> None:
    assert set(STATUSES) == {status for _, status, _ in LIFE_CYCLE} | {"invalid"}
    assert {name for name, _ in STATUS_OF.values()} | {"invalid"} == set(STATUSES)


def test_an_invalid_event_with_an_smtp_code_is_an_undeliverable_address() -> None:
    now = datetime.now(UTC)
    event = MailEvent(
        event_id="e", event=EventType.INVALID, env_id="e", msg_id="<e@x>", tenant_id="t",
        account="s@x", sender="s@x", rcpt="r@nxdomain.example", status=2, err_code=550,
        recv_time=now, time=now,
    )  # fmt: skip
    assert status_of(event) == ("invalid", TERMINAL_RANK)
    assert status_of(event.model_copy(update={"err_code": None})) == ("suppressed", TERMINAL_RANK)
