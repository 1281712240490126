"""What a report at the bounce MX is read as: the value types, and the limits of reading.

The limits bound the work one untrusted message can cause; every reader in the package
takes them from here.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from postwire_common.schemas import DeliveryStatus

MAX_BYTES = 512 * 1024  # of the raw message: reports come first, returned originals last
MAX_TEXT = 64 * 1024  # of each decoded part
MAX_PARTS = 32
MAX_RECIPIENTS = 50
MAX_DIAGNOSTIC = 1000


class Kind(StrEnum):
    BOUNCE = "bounce"  # at least one recipient failed for good
    DELAYED = "delayed"  # the remote MTA still retries: not a failure, ignore
    COMPLAINT = "complaint"
    AUTO_REPLY = "auto_reply"  # vacation notices and the like: never a bounce
    UNKNOWN = "unknown"


class MatchedBy(StrEnum):
    VERP = "verp"
    ENV_ID_HEADER = "env_id_header"
    MESSAGE_ID = "message_id"
    NONE = "none"


@dataclass(frozen=True, slots=True)
class Recipient:
    address: str
    action: str  # DSN Action (failed, delayed, relayed…); "complained" for ARF
    dsn_status: str | None  # enhanced status code, e.g. "5.1.1"
    diagnostic: str  # Diagnostic-Code or the MTA's words, whitespace collapsed
    status: DeliveryStatus | None = None  # 2, 3 or 4 when action is failed


@dataclass(frozen=True, slots=True)
class BounceReport:
    kind: Kind
    format: str  # dsn, arf, exim, qmail, postfix, exchange, gmail, yahoo, …
    recipients: tuple[Recipient, ...] = ()
    env_id: str | None = None
    message_id: str | None = None  # the original's, with angle brackets
    matched_by: MatchedBy = MatchedBy.NONE
    feedback_type: str | None = None  # ARF Feedback-Type, lower case
