"""The outcome of one delivery attempt, as a value, and how an SMTP reply maps to it.

=========  ======================  =================================================
outcome    when                    then
=========  ======================  =================================================
delivered  2xx after DATA          ``delivered`` event, status 0
soft       4xx, network, timeout   ``soft_bounce`` event, retry after the schedule
hard       5xx, no such domain     ``failed`` event: status 2 invalid address,
                                   3 rejected as spam, 4 other
=========  ======================  =================================================
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

    @property
    def summary(self) -> str:
        return f"{self.code} {self.message}" if self.code else self.message


# RFC 3463: X.1.7 and X.1.8 are about the sender's address, not the recipient's.
_SENDER_SUBJECTS = frozenset({"7", "8"})
_ENHANCED = re.compile(r"^\s*([245])\.(\d{1,3})\.(\d{1,3})\b")
# Words receivers use when they refuse mail as spam or for the sender's reputation.
_SPAM = re.compile(
    r"spam|junk|\bUBE\b|blocklist|blacklist|block ?list|black ?list|\bRBL\b|dnsbl|"
    r"spamhaus|barracuda|spamcop|reputation|content (?:rejected|filter)|phish|virus",
    re.IGNORECASE,
)
# Words receivers use for an address that does not exist.
_NO_SUCH_USER = re.compile(
    r"user unknown|unknown user|no such (?:user|mailbox|recipient|address)|"
    r"does ?n[o']t exist|not exist|invalid (?:recipient|mailbox|address)|"
    r"mailbox (?:unavailable|not found|disabled)|recipient (?:unknown|not found)|"
    r"address rejected|unrouteable|no mailbox|account (?:disabled|has been disabled)",
    re.IGNORECASE,
)


def classify_reply(code: int, message: str, host: str | None = None) -> DeliveryResult:
    """Map an SMTP reply to the outcome of the attempt (pure; table-tested)."""
    text = " ".join(message.split())[:500]
    if 200 <= code < 300:
        return DeliveryResult(Outcome.DELIVERED, DeliveryStatus.DELIVERED, code, text, host)
    if 400 <= code < 500 or not 500 <= code < 600:
        return DeliveryResult(Outcome.SOFT, None, code, text, host)
    enhanced = _ENHANCED.match(text)
    if (
        enhanced
        and enhanced.group(1, 2) == ("5", "1")
        and enhanced.group(3) not in _SENDER_SUBJECTS
    ):
        status = DeliveryStatus.INVALID_ADDRESS  # 5.1.x: bad destination mailbox or system
    elif _SPAM.search(text):
        status = DeliveryStatus.SPAM
    elif (code in (550, 551, 553) or enhanced) and _NO_SUCH_USER.search(text):
        status = DeliveryStatus.INVALID_ADDRESS
    else:
        status = DeliveryStatus.FAILED
    return DeliveryResult(Outcome.HARD, status, code, text, host)


def soft(message: str, code: int | None = None, host: str | None = None) -> DeliveryResult:
    return DeliveryResult(Outcome.SOFT, None, code, message, host)


def hard(status: DeliveryStatus, message: str, code: int | None = None) -> DeliveryResult:
    return DeliveryResult(Outcome.HARD, status, code, message)


def gave_up(last: DeliveryResult, attempts: int) -> DeliveryResult:
    """The final result when the soft-bounce schedule is exhausted."""
    return DeliveryResult(
        Outcome.HARD,
        DeliveryStatus.FAILED,
        last.code,
        f"gave up after {attempts} attempts; last: {last.summary}",
        last.host,
    )
