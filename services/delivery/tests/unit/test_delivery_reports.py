"""What a report received by the inbound MX does to the message it names (reports.judge)."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime

import pytest

from postwire_common.schemas import DeliveryStatus, EventType
from postwire_delivery.bounces import BounceReport, Kind, MatchedBy, Recipient
from postwire_delivery.reports import env_id_of, judge
from postwire_delivery.results import Outcome
from postwire_delivery.store import Sent

NOW = datetime(2026, 12, 1, 10, 0, tzinfo=UTC)
SENT = Sent(
    env_id="01JAAAAAAAAAAAAAAAAAAAAAAA",
    outcome=Outcome.DELIVERED,
    attempt=2,
    tenant_id="t1",
    rcpt="Ann@Example.org",
    msg_id="<01JAAAAAAAAAAAAAAAAAAAAAAA@shop.example>",
    sender="news@shop.example",
    label="promo",
    recv_time=datetime(2026, 12, 1, 9, 0, tzinfo=UTC),
)
FAILED_ANN = Recipient(
    "ann@example.org", "failed", "5.1.1", "550 5.1.1 <ann@example.org>: user unknown",
    DeliveryStatus.INVALID_ADDRESS,
)  # fmt: skip
BOUNCE = BounceReport(
    Kind.BOUNCE, "dsn", (FAILED_ANN,), env_id=SENT.env_id, matched_by=MatchedBy.VERP
)
COMPLAINT = BounceReport(
    Kind.COMPLAINT,
    "arf",
    (Recipient("ann@example.org", "complained", None, ""),),
    env_id=SENT.env_id,
    matched_by=MatchedBy.VERP,
    feedback_type="abuse",
)


def test_a_hard_bounce_fails_the_delivered_message_with_the_dsn_status() -> None:
    verdict = judge(BOUNCE, SENT, NOW)
    event = verdict.event
    assert event is not None
    assert (event.event, event.status, event.err_code) == (
        EventType.FAILED,
        DeliveryStatus.INVALID_ADDRESS,
        550,
    )
    assert event.err_msg == (
        "bounced after delivery (dsn): 5.1.1 550 5.1.1 <ann@example.org>: user unknown"
    )
    assert (event.env_id, event.msg_id, event.tenant_id, event.rcpt, event.label) == (
        SENT.env_id, SENT.msg_id, "t1", SENT.rcpt, "promo"
    )  # fmt: skip
    assert (event.attempt, event.recv_time, event.time) == (2, SENT.recv_time, NOW)


def test_the_same_report_twice_makes_the_same_event() -> None:
    first, again = judge(BOUNCE, SENT, NOW).event, judge(BOUNCE, SENT, NOW.replace(hour=11)).event
    assert first is not None
    assert again is not None
    assert first.event_id == again.event_id == f"{SENT.env_id}:bounce:failed"


def test_a_complaint_is_a_spam_report() -> None:
    event = judge(COMPLAINT, SENT, NOW).event
    assert event is not None
    assert (event.event, event.status, event.event_id) == (
        EventType.SPAM_REPORT,
        None,
        f"{SENT.env_id}:complaint:spam_report",
    )


def test_a_redacted_complaint_naming_no_one_still_counts() -> None:
    redacted = replace(COMPLAINT, recipients=())
    assert judge(redacted, SENT, NOW).reason == "complaint"


@pytest.mark.parametrize(
    ("report", "sent", "reason"),
    [
        (replace(BOUNCE, kind=Kind.AUTO_REPLY), SENT, "auto_reply"),
        (replace(BOUNCE, kind=Kind.DELAYED), SENT, "delayed"),
        (replace(BOUNCE, kind=Kind.UNKNOWN), SENT, "unknown"),
        (BOUNCE, None, "unknown message"),
        (BOUNCE, replace(SENT, outcome=Outcome.HARD), "message not delivered"),
        (
            replace(BOUNCE, recipients=(replace(FAILED_ANN, address="eve@example.org"),)),
            SENT,
            "recipient mismatch",
        ),
        (
            replace(BOUNCE, recipients=(replace(FAILED_ANN, action="delayed", status=None),)),
            SENT,
            "no failed recipient",
        ),
        (replace(BOUNCE, recipients=()), SENT, "no failed recipient"),
        (replace(COMPLAINT, feedback_type="not-spam"), SENT, "not a complaint"),
        (
            replace(
                BOUNCE,
                env_id=None,
                message_id="<01JAAAAAAAAAAAAAAAAAAAAAAA@elsewhere.example>",
                matched_by=MatchedBy.MESSAGE_ID,
            ),
            SENT,
            "unknown message",
        ),
    ],
)
def test_reports_that_change_nothing(report: BounceReport, sent: Sent | None, reason: str) -> None:
    verdict = judge(report, sent, NOW)
    assert (verdict.event, verdict.reason) == (None, reason)


def test_a_bounce_found_by_its_message_id_alone() -> None:
    by_id = replace(BOUNCE, env_id=None, message_id=SENT.msg_id, matched_by=MatchedBy.MESSAGE_ID)
    assert env_id_of(by_id) == SENT.env_id
    assert judge(by_id, SENT, NOW).reason == "bounce"


def test_the_env_id_named_first_by_verp_then_by_message_id() -> None:
    assert env_id_of(BOUNCE) == SENT.env_id
    assert env_id_of(replace(BOUNCE, env_id=None, message_id="<abc@x>")) == "abc"
    assert env_id_of(replace(BOUNCE, env_id=None)) is None
