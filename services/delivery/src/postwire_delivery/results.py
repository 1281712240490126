"""The outcome of one delivery attempt, as a value, and how an SMTP reply maps to it.

=========  ======================  =================================================
outcome    when                    then
=========  ======================  =================================================
delivered  2xx after DATA          ``delivered`` event, status 0
soft       4xx, network, timeout   ``soft_bounce`` event, retry after the schedule
hard       5xx, no such domain     ``failed`` event: status 2 invalid address,
                                   3 rejected as spam, 4 other
=========  ======================  =================================================

A 5xx reply gets its status from the first rule of ``_RULES`` that matches; the rules
are grouped by how specific their evidence is (see :func:`classify_reply`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum

from postwire_common.schemas import DeliveryStatus


class Outcome(StrEnum):
    DELIVERED = "delivered"
    SOFT = "soft"
    HARD = "hard"


@dataclass(frozen=True, slots=True)
class DeliveryResult:
    outcome: Outcome
    status: DeliveryStatus | None
    code: int | None
    message: str
    host: str | None = None
    # Never sent: the address cannot receive mail (no such domain, null MX). Reported as
    # an ``invalid`` event (status 2), like a suppressed address, not as ``failed``.
    undeliverable: bool = False

    @property
    def summary(self) -> str:
        return f"{self.code} {self.message}" if self.code else self.message


_INVALID, _SPAM, _OTHER = (
    DeliveryStatus.INVALID_ADDRESS,
    DeliveryStatus.SPAM,
    DeliveryStatus.FAILED,
)


@dataclass(frozen=True, slots=True)
class _Rule:
    """``status`` when the enhanced code is in ``codes`` (empty: any, or none) and
    ``text`` matches the reply (``None``: any text)."""

    status: DeliveryStatus
    codes: frozenset[str] = frozenset()
    text: re.Pattern[str] | None = None


def _codes(*specs: str) -> frozenset[str]:
    """Enhanced codes without their class: "1.1" one code, "7.20-29" a range, "7" a subject."""
    codes: set[str] = set()
    for spec in specs:
        subject, _, details = spec.partition(".")
        low, _, high = details.partition("-")
        if not low:
            codes.add(subject)
            continue
        codes.update(f"{subject}.{detail}" for detail in range(int(low), int(high or low) + 1))
    return frozenset(codes)


def _words(pattern: str) -> re.Pattern[str]:
    return re.compile(pattern, re.IGNORECASE)


# Words receivers use when they refuse mail as spam or for the sender's reputation or
# authentication, whatever code (or none) comes with them.
_SPAM_WORDS = _words(
    r"spam|junk|\bU[BC]E\b|unsolicited|blocklist|blacklist|block ?list|black ?list|"
    r"\bRBL\b|dnsbl|\bSURBL\b|\bURIBL\b|spamhaus|barracuda|spamcop|reputation|"
    r"complaints|mail flood|content (?:rejected|filter|denied)|phish|virus|malware|"
    r"\b(?:SPF|DKIM|DMARC)\b"
)
# Weaker words, trusted only with a code that already says "refused for who sent it":
# X.7.x security or policy, X.6.x content, X.1.7/X.1.8 the sender's address.
_POLICY_WORDS = _words(
    rf"{_SPAM_WORDS.pattern}|polic(?:y|ies)|\bblocked\b|\bPTR\b|reverse (?:DNS|hostname)|"
    r"find your (?:reverse )?host ?name"
)
# Words receivers use for an address (or its domain) that does not exist.
_NO_SUCH_USER_WORDS = _words(
    r"user unknown|unknown (?:user|recipient)|no such (?:user|mailbox|recipient|address)|"
    r"\b(?:user|mailbox|account|recipient|address|domain)\b[^.;]{0,40}?(?:does ?n[o']t|not) exist|"
    r"invalid (?:recipient|mailbox|address|user)|user (?:not found|suspended|is terminated)|"
    r"mailbox (?:unavailable|not found|disabled|is disabled)|recipient (?:unknown|not found)|"
    r"recipient address rejected|unrouteable|no mailbox|account (?:is |has been )?disabled"
)

# First match wins. Enhanced codes are RFC 3463 (subject.detail, class dropped: the
# basic 5xx code already says permanent), registered at IANA under RFC 5248.
_RULES: tuple[_Rule, ...] = (
    # -- 1. Providers' own reply tokens: exact, documented, so they beat any code. --
    # NetEase 163: 企业退信代码说明 (DT:SPM content judged spam, DT:RBL sender IP
    # blocklisted, HL:xxx the IP's sending behaviour, MI:SPB/SPF/DMA sender refused).
    _Rule(_SPAM, text=_words(r"\b(?:DT:(?:SPM|RBL)|HL:[A-Z]{3}|MI:(?:SPB|SPF|DMA))\b")),
    # Microsoft: Outlook.com postmaster, SMTP errors (S3140/S3150 network on block list;
    # SC-00x, DY-00x, OU-00x "rejected for policy reasons").
    _Rule(_SPAM, text=_words(r"\(S31[45]0\)|\b(?:SC|DY|OU)-00\d\b")),
    # Microsoft: Exchange Online NDRs, "Fix email delivery issues for error code 5.4.1":
    # Directory-Based Edge Blocking refuses a recipient the tenant does not have.
    _Rule(_INVALID, text=_words(r"\bAS\(201806281\)")),
    _Rule(_INVALID, _codes("4.1"), _words(r"recipient address rejected: access denied")),
    # Yahoo: Sender Hub, SMTP error codes ([BLnn] IP on a blocklist, [TSSnn] deferred
    # for volume or complaints, [PHnn] not accepted for policy reasons; "dd" no account).
    _Rule(_SPAM, text=_words(r"\[(?:BL|TSS|PH)\d\d\]")),
    _Rule(_INVALID, text=_words(r"\bdd This user doesn't have an? \S+ account")),
    # QQ / Tencent: QQ邮箱 退信代码说明 (rate limits and content refusals are answered 550).
    _Rule(_SPAM, text=_words(r"\b(?:ip|domain|connection) frequency limited|mail content denied")),
    # -- 2. Enhanced codes with one meaning: the receiver chose them, words are prose. --
    # RFC 3463: X.1.1 bad destination mailbox, X.1.2 bad destination system, X.1.3 bad
    # mailbox syntax, X.1.6 mailbox moved, X.2.1 mailbox disabled; RFC 7505: X.1.10
    # recipient has null MX (Exchange Online also sends 5.1.10 RecipientNotFound);
    # RFC 7293: X.7.17/X.7.18 mailbox/domain owner has changed.
    _Rule(_INVALID, _codes("1.1", "1.2", "1.3", "1.6", "1.10", "2.1", "7.17", "7.18")),
    # Microsoft: Exchange Online NDRs, "error code 5.4.310": DNS domain does not exist.
    _Rule(_INVALID, _codes("4.310")),
    # RFC 7372: X.7.20-22 no (valid, author-matched) DKIM signature, X.7.23/24 SPF
    # failed/error, X.7.25 reverse DNS failed, X.7.26 multiple authentication checks
    # failed; RFC 7505: X.7.27 sender has null MX; IANA (RFC 5248 registry): X.7.28 mail
    # flood; RFC 8617: X.7.29 ARC failed. Google: Workspace Admin Help, SMTP error
    # reference (5.7.25-28 for PTR, SPF/DKIM/DMARC, unsolicited rate).
    _Rule(_SPAM, _codes("7.20-29")),
    # Microsoft: Exchange Online NDRs, "Fix email delivery issues for error code 5.7.x":
    # 5.7.350 spam, 5.7.501-503 spam abuse, 5.7.511 banned sender, 5.7.513 customer
    # block list, 5.7.606-649 banned sending IP, 5.7.700-750 tenant or IP blocked.
    _Rule(_SPAM, _codes("7.350", "7.501-503", "7.511", "7.513", "7.606-649", "7.700-750")),
    # RFC 3463: X.7 security or policy, X.6 media/content, X.1.7/X.1.8 bad sender address:
    # a refusal for who sent the mail is a spam block when its words say so, else other.
    _Rule(_SPAM, _codes("7", "6", "1.7", "1.8"), _POLICY_WORDS),
    _Rule(_OTHER, _codes("7", "6", "1.7", "1.8")),
    # RFC 3463: X.1.4 ambiguous, X.1.5 valid, X.1.9 relayed; X.2.2 mailbox full (it
    # exists), X.2.3 too long, X.2.4 list expansion; X.3.4 too big; X.4 network/routing.
    _Rule(_OTHER, _codes("1.4", "1.5", "1.9", "2.2", "2.3", "2.4", "3.4", "4")),
    # -- 3. Words, for no code or a general one (X.0.0, X.1.0, X.2.0, X.3.x, X.5.x). --
    # A spam block often names a user or a recipient ("user complaints", "Recipient
    # address rejected: listed in RBL"), an unknown user rarely names a blocklist.
    _Rule(_SPAM, text=_SPAM_WORDS),
    # Microsoft: Outlook.com answers an unknown recipient "5.5.0 ... mailbox unavailable";
    # NetEase "User not found"; QQ and Mail.ru "Mailbox not found", "invalid mailbox".
    _Rule(_INVALID, text=_NO_SUCH_USER_WORDS),
    # Nothing matched: other (4), see _status.
)
_ENHANCED = re.compile(r"^(?:\d{3}[ -])?#?[245]\.(\d{1,3})\.(\d{1,3})\b")


def classify_reply(code: int, message: str, host: str | None = None) -> DeliveryResult:
    """Map an SMTP reply to the outcome of the attempt (pure; table-tested).

    2xx is delivered; 4xx (and any code outside 2xx-5xx) is soft whatever its text; 5xx
    is hard with the status of the first matching rule of ``_RULES``. Precedence:

    1. a provider's documented token (``DT:SPM``, ``(S3150)``, ``[BL21]``,
       ``AS(201806281)``) decides, even against the enhanced code it comes with;
    2. an enhanced code with one meaning decides against the words: a 5.1.1 whose text
       also names a filter (``spamfilter.example.net`` relayed it) stays an invalid
       address, a 5.2.2 mailbox full stays other; X.7/X.6/sender codes are refined by
       spam or policy words (3) and are otherwise other (4);
    3. without such a code, spam words are read before unknown-user words, because spam
       blocks often mention a user or recipient and unknown-user replies rarely mention
       a blocklist; then other (4).
    """
    collapsed = " ".join(message.split())
    text = collapsed[:500]
    if 200 <= code < 300:
        return DeliveryResult(Outcome.DELIVERED, DeliveryStatus.DELIVERED, code, text, host)
    if not 500 <= code < 600:
        return DeliveryResult(Outcome.SOFT, None, code, text, host)
    return DeliveryResult(Outcome.HARD, _status(collapsed[:2000]), code, text, host)


def _status(text: str) -> DeliveryStatus:
    enhanced = _ENHANCED.match(text)
    keys = {enhanced[1], f"{enhanced[1]}.{int(enhanced[2])}"} if enhanced else set()
    for rule in _RULES:
        if rule.codes and not keys & rule.codes:
            continue
        if rule.text is None or rule.text.search(text):
            return rule.status
    return _OTHER  # RFC 3463 X.0.0 and anything not named above


def soft(message: str, code: int | None = None, host: str | None = None) -> DeliveryResult:
    return DeliveryResult(Outcome.SOFT, None, code, message, host)


def hard(status: DeliveryStatus, message: str, code: int | None = None) -> DeliveryResult:
    return DeliveryResult(Outcome.HARD, status, code, message)


def undeliverable(message: str, code: int) -> DeliveryResult:
    """An address whose domain takes no mail: final at once, as ``invalid`` (status 2)."""
    return DeliveryResult(
        Outcome.HARD, DeliveryStatus.INVALID_ADDRESS, code, message, undeliverable=True
    )


def gave_up(last: DeliveryResult, attempts: int) -> DeliveryResult:
    """The final result when the soft-bounce schedule is exhausted."""
    return DeliveryResult(
        Outcome.HARD,
        DeliveryStatus.FAILED,
        last.code,
        f"gave up after {attempts} attempts; last: {last.summary}",
        last.host,
    )
