"""Merging a batch's events into one status row per message (merge_status)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from postwire_common.schemas import DeliveryStatus, EventType, MailEvent
from postwire_events.store import merge_status

T0 = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)


def event(env_id: str, kind: EventType, seconds: float, **extra: object) -> MailEvent:
    return MailEvent(
        event_id=f"{env_id}:{kind.value}:{seconds}",
        event=kind,
        env_id=env_id,
        msg_id=f"<{env_id}@shop.example>",
        tenant_id="t",
        account="news@shop.example",
        sender="news@shop.example",
        rcpt="ann@example.org",
        recv_time=T0,
        time=T0 + timedelta(seconds=seconds),
        **extra,  # type: ignore[arg-type]
    )


def by_env(rows: list[tuple]) -> dict[str, tuple]:
    return {row[0]: row for row in rows}


def test_terminal_wins_over_a_later_soft_bounce() -> None:
    rows = by_env(
        merge_status(
            [
                event("A", EventType.DELIVERED, 2, status=DeliveryStatus.DELIVERED),
                event("A", EventType.SOFT_BOUNCE, 5),
            ]
        )
    )
    assert rows["A"][7] == "delivered"


def test_equal_rank_goes_by_time_and_subject_comes_from_the_request() -> None:
    rows = by_env(
        merge_status(
            [
                event("A", EventType.SOFT_BOUNCE, 3),
                event("A", EventType.REQUEST, 0, subject="Hi", label="orders"),
            ]
        )
    )
    status, subject, label = rows["A"][7], rows["A"][5], rows["A"][6]
    assert (status, subject, label) == ("soft_bounced", "Hi", "orders")


def test_tracking_events_do_not_make_status_rows() -> None:
    assert merge_status([event("A", EventType.OPEN, 9), event("B", EventType.CLICK, 9)]) == []


def test_one_row_per_message_in_key_order() -> None:
    rows = merge_status(
        [
            event("C", EventType.REQUEST, 0),
            event("A", EventType.REQUEST, 0),
            event("B", EventType.FAILED, 1, status=DeliveryStatus.INVALID_ADDRESS),
            event("A", EventType.DELIVERED, 1, status=DeliveryStatus.DELIVERED),
        ]
    )
    assert [(r[0], r[7]) for r in rows] == [("A", "delivered"), ("B", "failed"), ("C", "queued")]
