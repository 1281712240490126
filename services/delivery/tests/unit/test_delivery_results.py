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
    # 4xx stays soft whatever the provider says in it
    (
        421,
        "4.7.28 [192.0.2.1] Our system has detected an unusual rate of\n"
        "4.7.28 unsolicited mail originating from your IP address.",
        SOFT,
        None,
    ),  # Gmail
    (
        421,
        "4.7.0 [TSS04] Messages from 192.0.2.1 temporarily deferred due to unexpected "
        "volume or user complaints - 4.16.55.1; see https://postmaster.yahooinc.com/error-codes",
        SOFT,
        None,
    ),  # Yahoo
    (
        451,
        "DT:SPM 163 mx14,QMCowAD3 please see http://mail.163.com/help/help_spam_16.htm",
        SOFT,
        None,
    ),
    (450, "4.1.1 <ann@example.org>: Recipient address rejected: User unknown", SOFT, None),
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
    # RFC 3463 / RFC 7505 / RFC 7293: recipient codes with one meaning
    (550, "5.1.2 Host unknown (Name server: example.org: host not found)", HARD, INVALID),
    (550, "5.1.6 Recipient no longer on server", HARD, INVALID),
    (550, "5.1.10 Recipient address has null MX", HARD, INVALID),
    (550, "5.2.1 Mailbox disabled, not accepting messages", HARD, INVALID),
    (550, "5.7.17 Mailbox owner has changed", HARD, INVALID),
    (550, "5.7.18 Domain owner has changed", HARD, INVALID),
    # the code decides against prose: a filtering gateway's name is not a spam block
    (550, "5.1.1 <ann@example.org>: user unknown (spamfilter.example.net)", HARD, INVALID),
    (550, "550-5.1.1 user unknown, as sent with its basic code", HARD, INVALID),
    # RFC 7372 / RFC 7505 / RFC 5248 registry: the receiver refused the sender: status 3
    (550, "5.7.20 No passing DKIM signature found", HARD, SPAM),
    (550, "5.7.23 SPF validation failed", HARD, SPAM),
    (550, "5.7.25 Reverse DNS validation failed", HARD, SPAM),
    (550, "5.7.26 Multiple authentication checks failed", HARD, SPAM),
    (550, "5.7.27 Sender address has null MX", HARD, SPAM),
    (550, "5.7.28 Mail flood detected", HARD, SPAM),
    (550, "5.7.0 Message refused as bulk spam", HARD, SPAM),
    (550, "5.7.1 Client host rejected: cannot find your reverse hostname", HARD, SPAM),
    (554, "5.6.0 Message content rejected as spam", HARD, SPAM),
    (550, "5.1.8 Sender address rejected: domain listed in blocklist", HARD, SPAM),
    # Google: Workspace Admin Help, SMTP error reference
    (
        550,
        "5.1.1 The email account that you tried to reach does not exist. Please try\n"
        "5.1.1 double-checking the recipient's email address for typos or\n"
        "5.1.1 unnecessary spaces. For more information, go to\n"
        "5.1.1 https://support.google.com/mail/?p=NoSuchUser x-gsmtp",
        HARD,
        INVALID,
    ),
    (550, "5.2.1 The email account that you tried to reach is disabled.", HARD, INVALID),
    (
        550,
        "5.7.1 [192.0.2.1] Gmail has detected that this message is likely unsolicited mail.\n"
        "5.7.1 https://support.google.com/mail/?p=UnsolicitedMessageError x-gsmtp",
        HARD,
        SPAM,
    ),
    (
        550,
        "5.7.26 Unauthenticated email from example.com is not accepted due to domain's\n"
        "5.7.26 DMARC policy. Please contact the administrator of example.com domain.",
        HARD,
        SPAM,
    ),
    (
        550,
        "5.7.25 [192.0.2.1] The IP address sending this message does not have a PTR record",
        HARD,
        SPAM,
    ),
    (
        550,
        "5.7.28 [192.0.2.1] Our system has detected an unusual rate of unsolicited mail",
        HARD,
        SPAM,
    ),
    (552, "5.2.2 The email account that you tried to reach is over quota.", HARD, FAILED),
    (
        550,
        "5.7.1 [192.0.2.1] The IP you're using to send mail is not authorized to send email "
        "directly to our servers. Please use the SMTP relay at your service provider instead.",
        HARD,
        FAILED,
    ),
    # Microsoft: Exchange Online NDRs and Outlook.com postmaster
    (550, "5.5.0 Requested action not taken: mailbox unavailable (S2017062302)", HARD, INVALID),
    (
        550,
        "5.4.1 Recipient address rejected: Access denied. AS(201806281) "
        "[DB5EUR03FT012.eop-EUR03.prod.protection.outlook.com]",
        HARD,
        INVALID,
    ),
    (550, "5.4.310 DNS domain example.invalid does not exist", HARD, INVALID),
    (
        550,
        "5.7.1 Unfortunately, messages from [192.0.2.1] weren't sent. Please contact your "
        "Internet service provider since part of their network is on our block list (S3150).",
        HARD,
        SPAM,
    ),
    (
        550,
        "5.7.1 Unfortunately, messages from [192.0.2.1] weren't sent. Please contact your "
        "Internet service provider. (S3140)",
        HARD,
        SPAM,
    ),
    (
        550,
        "SC-001 (BAY004-MC1F12) Unfortunately, messages from 192.0.2.1 weren't sent.",
        HARD,
        SPAM,
    ),
    (550, "5.7.606 Access denied, banned sending IP [192.0.2.1]", HARD, SPAM),
    (550, "5.7.511 Access denied, banned sender[192.0.2.1]", HARD, SPAM),
    (
        550,
        "5.7.513 Service unavailable, Client host [192.0.2.1] blocked by example.org",
        HARD,
        SPAM,
    ),
    (550, "5.7.501 Access denied, spam abuse detected", HARD, SPAM),
    (550, "5.7.64 TenantAttribution; Relay Access Denied", HARD, FAILED),
    (550, "5.4.1 Relay Access Denied", HARD, FAILED),
    # Yahoo: Sender Hub, SMTP error codes
    (
        554,
        "delivery error: dd This user doesn't have a yahoo.com account (ann@yahoo.com) [0] "
        "- mta1001.mail.gq1.yahoo.com",
        HARD,
        INVALID,
    ),
    (
        554,
        "delivery error: dd Sorry your message to ann@yahoo.com cannot be delivered. "
        "This mailbox is disabled (554.30). - mta1001.mail.gq1.yahoo.com",
        HARD,
        INVALID,
    ),
    (
        553,
        "5.7.1 [BL21] Connections will not be accepted from 192.0.2.1, because the ip is in "
        "Spamhaus's list; see https://postmaster.yahooinc.com/error-codes",
        HARD,
        SPAM,
    ),
    (
        553,
        "5.7.2 [TSS09] All messages from 192.0.2.1 will be permanently deferred; "
        "Retrying will NOT succeed. See https://postmaster.yahooinc.com/error-codes",
        HARD,
        SPAM,
    ),
    (554, "Message not allowed - [PH01] Email not accepted for policy reasons.", HARD, SPAM),
    (554, "5.7.9 Message not accepted for policy reasons.", HARD, SPAM),
    # Mail.ru
    (
        550,
        "Message was not accepted -- invalid mailbox. Local mailbox ann@mail.ru is "
        "unavailable: user not found",
        HARD,
        INVALID,
    ),
    (
        550,
        "spam message rejected. Please visit http://help.mail.ru/notspam-support/id?c=x "
        "or report details to abuse@corp.mail.ru. Error code: 1A2B.",
        HARD,
        SPAM,
    ),
    # QQ / Tencent
    (
        550,
        "Mailbox not found. http://service.mail.qq.com/cgi-bin/help?subtype=1&&no=1000728",
        HARD,
        INVALID,
    ),
    (
        550,
        "Ip frequency limited. http://service.mail.qq.com/cgi-bin/help?subtype=1&&no=1000725",
        HARD,
        SPAM,
    ),
    (550, "Domain frequency limited", HARD, SPAM),
    (
        550,
        "Mail content denied. http://service.mail.qq.com/cgi-bin/help?subtype=1&&no=1000726",
        HARD,
        SPAM,
    ),
    # NetEase 163
    (550, "User not found: ann@163.com", HARD, INVALID),
    (550, "User suspended: ann@163.com", HARD, INVALID),
    (
        554,
        "DT:SPM 163 mx14,QMCowAD3 please see http://mail.163.com/help/help_spam_16.htm",
        HARD,
        SPAM,
    ),
    (554, "DT:RBL 163 mx14,QMCowAD3 ip in blacklist", HARD, SPAM),
    (554, "MI:SPB 163 mx14,QMCowAD3 sender not allowed", HARD, SPAM),
    (554, "HL:IHU 163 mx14,QMCowAD3 IP temporarily suspended", HARD, SPAM),
    (550, "MI:SPF 163 mx14,QMCowAD3 SPF check failed", HARD, SPAM),
    # Apple iCloud
    (550, "5.1.1 <ann@icloud.com>: user does not exist", HARD, INVALID),
    (
        554,
        "5.7.1 [HM08] Message rejected due to local policy. Please visit support.apple.com",
        HARD,
        SPAM,
    ),
    (552, "5.2.2 <ann@icloud.com>: user is over quota", HARD, FAILED),
    # generic MTAs: Postfix, Sendmail, Exim, Proofpoint
    (
        550,
        "5.1.1 <ann@example.org>: Recipient address rejected: User unknown in virtual "
        "mailbox table",
        HARD,
        INVALID,
    ),
    (550, "5.1.1 <ann@example.org>... User unknown", HARD, INVALID),
    (550, "Unrouteable address", HARD, INVALID),
    (
        554,
        "5.7.1 Service unavailable; Client host [192.0.2.1] blocked using zen.spamhaus.org",
        HARD,
        SPAM,
    ),
    (550, "5.7.1 Message rejected: SPF check failed", HARD, SPAM),
    (550, "5.7.0 Blocked - see https://ipcheck.proofpoint.com/?ip=192.0.2.1", HARD, SPAM),
    (554, "5.7.1 <ann@example.org>: Recipient address rejected: Access denied", HARD, FAILED),
    (550, "5.1.0 <bob@example.com>: Sender address rejected: not logged in", HARD, FAILED),
    # other 5xx: status 4
    (552, "5.3.4 Message size exceeds fixed maximum message size", HARD, FAILED),
    (552, "5.2.2 Mailbox full", HARD, FAILED),  # the address exists
    (554, "5.7.1 <ann@example.org>: Relay access denied", HARD, FAILED),
    (554, "Transaction failed", HARD, FAILED),
    (521, "5.3.2 Host does not accept mail", HARD, FAILED),
    (530, "5.7.0 Must issue a STARTTLS command first", HARD, FAILED),
    (550, "5.1.8 Bad sender's system address", HARD, FAILED),  # our sender, not the rcpt
    (553, "5.1.7 Bad sender's mailbox address syntax", HARD, FAILED),
    (550, "5.1.4 Destination mailbox address ambiguous", HARD, FAILED),
    (554, "5.4.4 Unable to route: no mail hosts for domain", HARD, FAILED),
    (554, "5.4.6 Routing loop detected", HARD, FAILED),
    (554, "5.6.1 Media not supported", HARD, FAILED),
    (550, "5.7.8 Authentication credentials invalid", HARD, FAILED),
    (550, "5.7.30 REQUIRETLS support required", HARD, FAILED),
    (550, "5.0.0 Undefined failure", HARD, FAILED),
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
