"""How an SMTP reply maps to the outcome of a delivery attempt (classify_reply)."""

from __future__ import annotations

import pytest

from postwire_common.schemas import DeliveryStatus
from postwire_delivery.results import Outcome, classify_reply, gave_up, soft

DELIVERED, SOFT, HARD = Outcome.DELIVERED, Outcome.SOFT, Outcome.HARD
INVALID, SPAM, FAILED = (
    DeliveryStatus.INVALID_ADDRESS,
    DeliveryStatus.SPAM,
    DeliveryStatus.FAILED,
)

REPLIES = [
    # 2xx: delivered, status 0
    (250, "2.0.0 Ok: queued as 4F2B1", DELIVERED, DeliveryStatus.DELIVERED),
    (250, "Send Mail OK", DELIVERED, DeliveryStatus.DELIVERED),
    (251, "2.1.5 User not local; will forward", DELIVERED, DeliveryStatus.DELIVERED),
    # 4xx: soft bounce, retried; no status yet
    (421, "4.7.0 Try again later, closing connection", SOFT, None),
    (450, "4.2.1 Mailbox busy", SOFT, None),
    (451, "4.7.1 Greylisted, please try again", SOFT, None),
    (452, "4.5.3 Too many recipients", SOFT, None),
    (450, "4.1.1 User unknown (temporarily)", SOFT, None),
    (451, "4.7.1 Listed on spamhaus, try later", SOFT, None),
    # 5xx invalid address: status 2
    (550, "5.1.1 <ann@example.org>: Recipient address rejected: User unknown", HARD, INVALID),
    (550, "5.1.1 user unknown", HARD, INVALID),
    (550, "No Such User", HARD, INVALID),  # the Aliyun seed's example
    (550, "No such user here", HARD, INVALID),
    (550, "Requested action not taken: mailbox unavailable", HARD, INVALID),
    (553, "5.1.3 Bad recipient address syntax", HARD, INVALID),
    (550, "5.1.10 RESOLVER.ADR.RecipientNotFound; Recipient not found", HARD, INVALID),
    (
        550,
        "5.1.1 The email account that you tried to reach does not exist. Please try",
        HARD,
        INVALID,
    ),
    # 5xx spam or reputation: status 3
    (554, "5.7.1 Message rejected as spam", HARD, SPAM),
    (
        550,
        "5.7.1 Service unavailable; Client host [192.0.2.1] blocked using Spamhaus",
        HARD,
        SPAM,
    ),
    (
        554,
        "5.7.1 Service unavailable; client [192.0.2.1] blocked using zen.spamhaus.org",
        HARD,
        SPAM,
    ),
    # spam wins over address words
    (550, "Recipient address rejected: listed in RBL", HARD, SPAM),
    (554, "5.7.1 <ann@example.org>: Recipient address rejected: listed in RBL", HARD, SPAM),
    (
        550,
        "5.7.1 [192.0.2.1] Our system has detected that this message is likely unsolicited "
        "mail. To reduce the amount of spam sent to Gmail, this message has been blocked.",
        HARD,
        SPAM,
    ),
    (550, "5.7.350 Remote server returned message detected as spam", HARD, SPAM),
    # other 5xx: status 4
    (552, "5.3.4 Message size exceeds fixed maximum message size", HARD, FAILED),
    (552, "5.2.2 Mailbox full", HARD, FAILED),  # the address exists
    (554, "5.7.1 <ann@example.org>: Relay access denied", HARD, FAILED),
    (554, "Transaction failed", HARD, FAILED),
    (521, "5.3.2 Host does not accept mail", HARD, FAILED),
    (530, "5.7.0 Must issue a STARTTLS command first", HARD, FAILED),
    (550, "5.1.8 Bad sender's system address", HARD, FAILED),  # our sender, not the rcpt
    (553, "5.1.7 Bad sender's mailbox address syntax", HARD, FAILED),
    # codes outside 2xx/4xx/5xx are not trusted to be final
    (999, "bogus", SOFT, None),
    (100, "continue?", SOFT, None),
    (600, "what", SOFT, None),
    (0, "", SOFT, None),
]


@pytest.mark.parametrize(
    ("code", "message", "outcome", "status"),
    REPLIES,
    ids=[f"{code}-{message[:40]}" for code, message, _, _ in REPLIES],
)
def test_classify_reply(
    code: int, message: str, outcome: Outcome, status: DeliveryStatus | None
) -> None:
    result = classify_reply(code, message, host="mx.example.org")
    assert (result.outcome, result.status) == (outcome, status)
    assert result.code == code
    assert result.host == "mx.example.org"


def test_delivered_is_status_zero() -> None:
    assert classify_reply(250, "ok").status == 0


@pytest.mark.parametrize(
    ("message", "collapsed"),
    [
        (
            "5.1.1 The email account that you\n tried to reach   does not exist.",
            "5.1.1 The email account that you tried to reach does not exist.",
        ),
        ("  4.7.0  try\r\nagain\tlater  ", "4.7.0 try again later"),
        ("", ""),
    ],
)
def test_whitespace_is_collapsed(message: str, collapsed: str) -> None:
    assert classify_reply(550, message).message == collapsed


def test_multi_line_reply_is_classified_on_all_its_lines() -> None:
    reply = "5.7.1 Message rejected\n5.7.1 because it looks like spam\n5.7.1 see our policy"
    result = classify_reply(554, reply)
    assert result.status == SPAM
    assert "\n" not in result.message


def test_summary_has_code_and_text() -> None:
    assert classify_reply(550, "5.1.1 user unknown").summary == "550 5.1.1 user unknown"


@pytest.mark.parametrize(
    "last",
    [
        classify_reply(451, "4.7.1 Greylisted", host="mx1.example.org"),
        classify_reply(421, "4.4.2 Timeout", host="mx2.example.org"),
    ],
)
def test_gave_up_is_a_failure_that_keeps_the_last_code(last: object) -> None:
    result = gave_up(last, attempts=10)  # type: ignore[arg-type]
    assert result.outcome is HARD
    assert result.status == FAILED
    assert result.code == last.code  # type: ignore[attr-defined]
    assert result.host == last.host  # type: ignore[attr-defined]
    assert "10" in result.message
    assert last.message in result.message  # type: ignore[attr-defined]


def test_gave_up_after_network_errors_has_no_code() -> None:
    result = gave_up(soft("connection refused by mx.example.org"), attempts=3)
    assert (result.outcome, result.status, result.code) == (HARD, FAILED, None)
    assert "connection refused" in result.message
