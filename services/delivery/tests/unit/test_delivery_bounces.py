"""How mail at the bounce MX is read (parse_bounce): one sample per format, exact values."""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from postwire_common.schemas import DeliveryStatus
from postwire_delivery.bounces import (
    BounceReport,
    Kind,
    MatchedBy,
    Recipient,
    parse_bounce,
    verp_env_id,
)

SAMPLES = Path(__file__).parent / "bounce_samples"
INVALID, SPAM, FAILED = (
    DeliveryStatus.INVALID_ADDRESS,
    DeliveryStatus.SPAM,
    DeliveryStatus.FAILED,
)
VERP, HEADER, MESSAGE_ID, NONE = (
    MatchedBy.VERP,
    MatchedBy.ENV_ID_HEADER,
    MatchedBy.MESSAGE_ID,
    MatchedBy.NONE,
)
PLAIN = "bounces@bounces.postwire.example"  # a bounce address without VERP


def verp(env_id: str) -> str:
    return f"bounce+{env_id}@bounces.postwire.example"


def sample(name: str) -> bytes:
    return (SAMPLES / name).read_bytes()


CASES = [
    pytest.param(
        "dsn_hard_511.eml",
        verp("01J9ZQ4M3X8T7K2B6N5R0VWHCD"),
        # Auto-Submitted: auto-replied as well: the DSN wins.
        BounceReport(
            Kind.BOUNCE,
            "dsn",
            (
                Recipient(
                    "ann@example.org",
                    "failed",
                    "5.1.1",
                    "550 5.1.1 <ann@example.org>: Recipient address rejected: "
                    "User unknown in virtual mailbox table",
                    INVALID,
                ),
            ),
            env_id="01J9ZQ4M3X8T7K2B6N5R0VWHCD",
            message_id="<01J9ZQ4M3X8T7K2B6N5R0VWHCD@shop.example>",
            matched_by=VERP,
        ),
        id="dsn-hard-5.1.1",
    ),
    pytest.param(
        "dsn_spam_571.eml",
        PLAIN,
        BounceReport(
            Kind.BOUNCE,
            "dsn",
            (
                Recipient(
                    "bob@gmail.example",
                    "failed",
                    "5.7.1",
                    "550-5.7.1 [203.0.113.9] Gmail has detected that this message is likely "
                    "unsolicited mail. To reduce the amount of spam sent to Gmail, this message "
                    "has been blocked. 41be03b00d2f7-1234 - gsmtp",
                    SPAM,
                ),
            ),
            env_id="01J9ZQ5B0000000000000000SP",
            message_id="<01J9ZQ5B0000000000000000SP@shop.example>",
            matched_by=HEADER,
        ),
        id="dsn-spam-5.7.1-gmail",
    ),
    pytest.param(
        "dsn_delayed.eml",
        verp("01J9ZQ6D0000000000000000DL"),
        BounceReport(
            Kind.DELAYED,
            "dsn",
            (
                Recipient(
                    "carol@example.net",
                    "delayed",
                    "4.4.1",
                    "connect to mx.example.net[198.51.100.30]:25: Connection timed out",
                ),
            ),
            env_id="01J9ZQ6D0000000000000000DL",
            message_id="<01J9ZQ6D0000000000000000DL@shop.example>",
            matched_by=VERP,
        ),
        id="dsn-delayed-4.4.1",
    ),
    pytest.param(
        "dsn_message_id_only.eml",
        "postmaster@bounces.postwire.example",
        BounceReport(
            Kind.BOUNCE,
            "dsn",
            (
                Recipient(
                    "dave@corp.example.com", "failed", "5.2.2", "552 5.2.2 Mailbox full", FAILED
                ),
            ),
            message_id="<01J9ZQ7M0000000000000000ID@shop.example>",  # folded header
            matched_by=MESSAGE_ID,
        ),
        id="dsn-no-verp-message-id",
    ),
    pytest.param(
        "exim.eml",
        PLAIN,
        BounceReport(
            Kind.BOUNCE,
            "exim",
            (
                Recipient(
                    "erin@example.co.uk",
                    "failed",
                    "5.1.1",
                    "host mx2.example.co.uk [198.51.100.44] SMTP error from remote mail server "
                    "after RCPT TO:<erin@example.co.uk>: 550 5.1.1 <erin@example.co.uk>: "
                    "Recipient address rejected: User unknown",
                    INVALID,
                ),
            ),  # not mallory@, who is in the returned copy's body
            env_id="01J9ZQ8E0000000000000000EX",
            message_id="<01J9ZQ8E0000000000000000EX@shop.example>",
            matched_by=HEADER,
        ),
        id="exim",
    ),
    pytest.param(
        "exim_delayed.eml",
        verp("01J9ZQ8W0000000000000000WD"),
        BounceReport(
            Kind.DELAYED,
            "exim",
            (
                Recipient(
                    "frank@example.co.uk",
                    "delayed",
                    "4.7.1",
                    "Delay reason: SMTP error from remote mail server after "
                    "RCPT TO:<frank@example.co.uk>: host mx.example.co.uk [198.51.100.45]: "
                    "451 4.7.1 Greylisted, please try again later",
                ),
            ),
            env_id="01J9ZQ8W0000000000000000WD",
            matched_by=VERP,
        ),
        id="exim-delayed",
    ),
    pytest.param(
        "qmail.eml",
        PLAIN,
        BounceReport(
            Kind.BOUNCE,
            "qmail",
            (
                Recipient(
                    "gina@example.com",
                    "failed",
                    "5.1.1",
                    "Sorry, no mailbox here by that name. (#5.1.1)",
                    INVALID,
                ),
                Recipient(
                    "hank@example.com",
                    "failed",
                    "5.7.1",
                    "198.51.100.61 does not like recipient. Remote host said: 554 5.7.1 "
                    "<hank@example.com>: Recipient address rejected: Your IP is listed on "
                    "zen.spamhaus.org Giving up on 198.51.100.61.",
                    SPAM,
                ),
            ),  # not ivan@, who is in the returned copy
            env_id="01J9ZQ9Q0000000000000000QM",  # the copy's VERP Return-Path
            message_id="<01J9ZQ9Q0000000000000000QM@shop.example>",
            matched_by=VERP,
        ),
        id="qmail",
    ),
    pytest.param(
        "postfix_plain.eml",
        verp("01J9ZQAP0000000000000000PF"),
        BounceReport(
            Kind.BOUNCE,
            "postfix",
            (
                Recipient(
                    "judy@example.net",
                    "failed",
                    "5.7.1",
                    "host mx.example.net[198.51.100.80] said: 554 5.7.1 Service unavailable; "
                    "Client host [203.0.113.9] blocked using bl.spamcop.net "
                    "(in reply to RCPT TO command)",
                    SPAM,
                ),
                Recipient("kim@example.net", "failed", None, 'unknown user: "kim"', INVALID),
            ),
            env_id="01J9ZQAP0000000000000000PF",
            matched_by=VERP,
        ),
        id="postfix-plain",
    ),
    pytest.param(
        "exchange.eml",
        PLAIN,
        BounceReport(
            Kind.BOUNCE,
            "exchange",
            (
                Recipient(
                    "leo@contoso.example",
                    "failed",
                    "5.1.10",
                    "550 5.1.10 RESOLVER.ADR.RecipientNotFound; "
                    "Recipient not found by SMTP address lookup",
                    INVALID,
                ),
            ),
            env_id="01J9ZQBX0000000000000000XC",
            message_id="<01J9ZQBX0000000000000000XC@shop.example>",
            matched_by=HEADER,
        ),
        id="exchange",
    ),
    pytest.param(
        "gmail.eml",
        verp("01J9ZQCG0000000000000000GM"),
        BounceReport(
            Kind.BOUNCE,
            "gmail",
            (
                Recipient(
                    "mia@gmail.example",
                    "failed",
                    "5.1.1",
                    "550 5.1.1 The email account that you tried to reach does not exist. "
                    "Please try double-checking the recipient's email address for typos or "
                    "unnecessary spaces. For more information, go to "
                    "https://support.google.com/mail/?p=NoSuchUser a1b2c3 - gsmtp",
                    INVALID,
                ),
            ),
            env_id="01J9ZQCG0000000000000000GM",
            matched_by=VERP,
        ),
        id="gmail",
    ),
    pytest.param(
        "yahoo.eml",
        PLAIN,
        BounceReport(
            Kind.BOUNCE,
            "yahoo",
            (
                Recipient(
                    "nina@yahoo.example",
                    "failed",
                    None,
                    "554: delivery error: dd This user doesn't have a yahoo.example account "
                    "(nina@yahoo.example) [0] - mta1234.mail.example.yahoo.com",
                    INVALID,
                ),
            ),
            env_id="01J9ZQD50000000000000000YH",
            message_id="<01J9ZQD50000000000000000YH@shop.example>",
            matched_by=HEADER,
        ),
        id="yahoo",
    ),
    pytest.param(
        "arf_abuse.eml",
        "fbl@bounces.postwire.example",
        BounceReport(
            Kind.COMPLAINT,
            "arf",
            (Recipient("oscar@isp.example", "complained", None, ""),),
            env_id="01J9ZQEA0000000000000000AR",
            message_id="<01J9ZQEA0000000000000000AR@shop.example>",
            matched_by=HEADER,
            feedback_type="abuse",
        ),
        id="arf-abuse",
    ),
    pytest.param(
        "arf_redacted.eml",
        "fbl@bounces.postwire.example",
        BounceReport(
            Kind.COMPLAINT,
            "arf",
            (Recipient("pat@mailbox.example", "complained", None, ""),),  # the original's To
            message_id="<01J9ZQEB0000000000000000AR@shop.example>",
            matched_by=MESSAGE_ID,
            feedback_type="abuse",
        ),
        id="arf-without-rcpt-to",
    ),
    pytest.param(
        "vacation.eml",
        verp("01J9ZQF20000000000000000VC"),
        # "does not exist" in a vacation text is no bounce.
        BounceReport(
            Kind.AUTO_REPLY,
            "subject",
            env_id="01J9ZQF20000000000000000VC",
            message_id="<01J9ZQF20000000000000000VC@shop.example>",
            matched_by=VERP,
        ),
        id="vacation",
    ),
    pytest.param(
        "rfc3834_notice.eml",
        PLAIN,
        BounceReport(
            Kind.AUTO_REPLY,
            "auto-submitted",
            message_id="<01J9ZQF90000000000000000NT@shop.example>",  # last of References
            matched_by=MESSAGE_ID,
        ),
        id="rfc3834-auto-generated",
    ),
    pytest.param(
        "human_reply.eml", PLAIN, BounceReport(Kind.UNKNOWN, ""), id="human-reply-unknown"
    ),
]


@pytest.mark.parametrize(("name", "envelope_rcpt", "expected"), CASES)
def test_sample(name: str, envelope_rcpt: str, expected: BounceReport) -> None:
    assert parse_bounce(sample(name), envelope_rcpt) == expected


def test_every_sample_has_a_case() -> None:
    covered = {case.values[0] for case in CASES}
    assert covered == {path.name for path in SAMPLES.glob("*.eml")}


# ---- the failure status of a DSN recipient ------------------------------------------------


def dsn(status: str, diagnostic: str, action: str = "failed") -> bytes:
    return (
        "From: MAILER-DAEMON@mx.example.org\r\n"
        "Content-Type: multipart/report; report-type=delivery-status; boundary=b\r\n\r\n"
        "--b\r\nContent-Type: text/plain\r\n\r\nfailed\r\n"
        "--b\r\nContent-Type: message/delivery-status\r\n\r\n"
        "Reporting-MTA: dns; mx.example.org\r\n\r\n"
        "Final-Recipient: rfc822; ann@example.org\r\n"
        f"Action: {action}\r\nStatus: {status}\r\nDiagnostic-Code: smtp; {diagnostic}\r\n"
        "--b--\r\n"
    ).encode()


@pytest.mark.parametrize(
    ("status", "diagnostic", "expected"),
    [
        ("5.1.1", "550 5.1.1 User unknown", INVALID),
        ("5.1.10", "550 5.1.10 RESOLVER.ADR.RecipientNotFound", INVALID),
        ("5.1.2", "550 5.1.2 Host unknown", INVALID),
        ("5.1.7", "553 5.1.7 Bad sender address syntax", FAILED),  # about us, the sender
        ("5.1.8", "553 5.1.8 Sender domain does not resolve", FAILED),
        ("5.0.0", "550 Sorry, that user does not exist", INVALID),
        ("5.0.0", "550 Sorry, no mailbox here by that name", INVALID),
        ("5.2.2", "552 5.2.2 Mailbox full", FAILED),
        ("5.7.1", "554 5.7.1 Message rejected as spam", SPAM),
        ("5.7.1", "550 5.7.1 Client host blocked using zen.spamhaus.org", SPAM),
        ("5.7.1", "550 5.7.1 Sender reputation too low", SPAM),
        ("5.7.9", "554 5.7.9 Message not accepted for policy reasons", SPAM),
        ("5.7.1", "550 5.7.1 Relaying denied", FAILED),
        ("5.3.4", "552 5.3.4 Message size exceeds fixed limit", FAILED),
        ("4.4.7", "Delivery time expired", FAILED),  # failed after retrying: final
        ("5.1.1", "550 5.7.1 spam", INVALID),  # the Status field wins over the reply text
    ],
)
def test_failure_status(status: str, diagnostic: str, expected: DeliveryStatus) -> None:
    (rcpt,) = parse_bounce(dsn(status, diagnostic), PLAIN).recipients
    assert (rcpt.dsn_status, rcpt.status) == (status, expected)


@pytest.mark.parametrize(
    ("action", "kind", "status"),
    [
        ("failed", Kind.BOUNCE, FAILED),
        ("error", Kind.BOUNCE, FAILED),  # OpenSMTPD's word for failed
        ("delayed", Kind.DELAYED, None),
        ("relayed", Kind.UNKNOWN, None),
        ("delivered", Kind.UNKNOWN, None),
    ],
)
def test_dsn_action(action: str, kind: Kind, status: DeliveryStatus | None) -> None:
    report = parse_bounce(dsn("5.0.0", "550 no", action), PLAIN)
    assert (report.kind, report.recipients[0].action, report.recipients[0].status) == (
        kind,
        "failed" if action == "error" else action,
        status,
    )


# ---- auto-replies -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        ("Auto-Submitted: auto-replied\r\nSubject: Re: hello", "auto-submitted"),
        ("Auto-Submitted: auto-generated\r\nSubject: Notice", "auto-submitted"),
        ("X-Autoreply: yes\r\nSubject: Re: hello", "x-autoreply"),
        ("X-Autorespond: Re: hello\r\nSubject: Re: hello", "x-autorespond"),
        ("Precedence: auto_reply\r\nSubject: Re: hello", "precedence"),
        ("Subject: Out of Office: hello", "subject"),
        ("Subject: Auto: hello", "subject"),
        ("Subject: AUTOMATIC REPLY: hello", "subject"),
        ("Subject: =?utf-8?q?R=C3=A9ponse_automatique=3A_hello?=", "subject"),
        ("Subject: Abwesenheitsnotiz: hello", "subject"),
    ],
)
def test_auto_reply(headers: str, expected: str) -> None:
    raw = f"From: ann@example.org\r\n{headers}\r\n\r\nAway.\r\n".encode()
    assert parse_bounce(raw, PLAIN) == BounceReport(Kind.AUTO_REPLY, expected)


@pytest.mark.parametrize(
    "headers",
    [
        "Auto-Submitted: no\r\nSubject: hello",  # RFC 3834: "no" means a person sent it
        "Precedence: bulk\r\nSubject: Our newsletter",
        "Subject: Re: about the office move",
    ],
)
def test_not_auto_reply(headers: str) -> None:
    raw = f"From: ann@example.org\r\n{headers}\r\n\r\nHi.\r\n".encode()
    assert parse_bounce(raw, PLAIN).kind is Kind.UNKNOWN


# ---- matching -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("address", "expected"),
    [
        (
            "bounce+01J9ZQ4M3X8T7K2B6N5R0VWHCD@bounces.postwire.example",
            "01J9ZQ4M3X8T7K2B6N5R0VWHCD",
        ),
        (
            "<bounce+01J9ZQ4M3X8T7K2B6N5R0VWHCD@bounces.postwire.example>",
            "01J9ZQ4M3X8T7K2B6N5R0VWHCD",
        ),
        ("BOUNCE+abc_12-x@bounces.postwire.example", "abc_12-x"),
        ("bounce+@bounces.postwire.example", None),
        ("bounce+a b@bounces.postwire.example", None),
        ("bounces@bounces.postwire.example", None),
        ("ann@example.org", None),
        ("", None),
    ],
)
def test_verp_env_id(address: str, expected: str | None) -> None:
    assert verp_env_id(address) == expected


def test_verp_wins_over_the_returned_header() -> None:
    report = parse_bounce(sample("dsn_spam_571.eml"), verp("01J9ZQ5BVERP0000000000000SP"))
    assert (report.env_id, report.matched_by) == ("01J9ZQ5BVERP0000000000000SP", VERP)


def test_in_reply_to_wins_over_references() -> None:
    raw = (
        b"From: ann@example.org\r\nSubject: Auto: hi\r\nIn-Reply-To: <b@shop.example>\r\n"
        b"References: <a@shop.example> <c@shop.example>\r\n\r\nAway.\r\n"
    )
    assert parse_bounce(raw, PLAIN).message_id == "<b@shop.example>"


# ---- untrusted input: never raise, bounded work ---------------------------------------------


@pytest.mark.parametrize(
    "raw",
    [
        b"",
        b"\x00\xff\xfe garbage \x80\x81",
        b"Content-Type: multipart/report; report-type=delivery-status; boundary=x\r\n\r\n--x\r\n",
        b"Content-Type: message/delivery-status\r\nContent-Transfer-Encoding: base64\r\n\r\n!!!",
        b"Subject: =?bogus-charset?q?=FF?=\r\nFrom: \xff\xfe@\x80\r\n\r\nbody",
        b"Content-Type: multipart/mixed; boundary=a\r\n\r\n" + b"--a\r\n" * 5000,
    ],
    ids=["empty", "binary", "truncated-report", "bad-base64-dsn", "bad-headers", "many-parts"],
)
def test_garbage_is_unknown(raw: bytes) -> None:
    assert parse_bounce(raw, PLAIN) == BounceReport(Kind.UNKNOWN, "")


def test_parser_failure_is_unknown_with_the_verp_match() -> None:
    nested = b"Content-Type: message/rfc822\r\n\r\n" * 20_000  # the email package recurses
    assert parse_bounce(nested, verp("01J9ZQ4M3X8T7K2B6N5R0VWHCD")) == BounceReport(
        Kind.UNKNOWN, "unparseable", env_id="01J9ZQ4M3X8T7K2B6N5R0VWHCD", matched_by=VERP
    )


def test_recipients_are_capped() -> None:
    blocks = "".join(
        f"Final-Recipient: rfc822; user{i}@example.org\r\nAction: failed\r\nStatus: 5.1.1\r\n\r\n"
        for i in range(500)
    )
    raw = (
        "Content-Type: multipart/report; report-type=delivery-status; boundary=b\r\n\r\n"
        "--b\r\nContent-Type: message/delivery-status\r\n\r\n"
        f"Reporting-MTA: dns; mx.example.org\r\n\r\n{blocks}--b--\r\n"
    ).encode()
    recipients = parse_bounce(raw, PLAIN).recipients
    assert [r.address for r in recipients] == [f"user{i}@example.org" for i in range(50)]


def test_a_huge_message_is_read_from_its_head() -> None:
    raw = sample("qmail.eml") + b"x" * (8 * 1024 * 1024)
    assert parse_bounce(raw, PLAIN).kind is Kind.BOUNCE


@pytest.mark.parametrize("name", sorted(p.name for p in SAMPLES.glob("*.eml")))
def test_cut_and_corrupted_samples_never_raise(name: str) -> None:
    raw = sample(name)
    rng = random.Random(name)
    for cut in range(0, len(raw), 37):
        parse_bounce(raw[:cut], PLAIN)
    for _ in range(200):
        noisy = bytearray(raw)
        for _ in range(8):
            noisy[rng.randrange(len(noisy))] = rng.randrange(256)
        assert isinstance(parse_bounce(bytes(noisy), PLAIN), BounceReport)
