"""One recipient of a report, whatever its format: its status code, words and outcome.

DSNs and plain-text reports both end here, so a failure reads the same however the remote
MTA wrote it: the enhanced status code (the DSN's ``Status``, else the first one in the
words), the diagnostic without the reply code repeated on each line, and the
``DeliveryStatus`` a synchronous 5xx with those words would get (``classify_reply``),
sharpened by what only reports say.
"""

from __future__ import annotations

import re

from postwire_common.schemas import DeliveryStatus
from postwire_delivery.bounces.report import MAX_DIAGNOSTIC, Kind, Recipient
from postwire_delivery.results import Outcome, classify_reply

# Not inside an IP address: "(#5.1.1)", "550-5.1.1", "Status: 5.1.1." but not "10.4.5.6".
ENHANCED = re.compile(r"(?<![\w.])([245]\.\d{1,3}\.\d{1,3})(?!\.?\d)")
# Report prose for an address that does not exist, beyond results._NO_SUCH_USER's reply words.
_NO_ACCOUNT = re.compile(r"doesn't have an? \S+ account|no mailbox here by that name", re.I)
# A receiver refusing by policy under X.7.x ("not accepted for policy reasons") is a
# reputation block; results._SPAM does not list the word, as a sync 5.7.1 policy is vaguer.
_POLICY = re.compile(r"\bpolic(?:y|ies)\b", re.IGNORECASE)


_REPLY_CODE = re.compile(r"([245]\d\d)[ -]([245]\.\d{1,3}\.\d{1,3})(?=\s)")


def kind(recipients: tuple[Recipient, ...]) -> Kind:
    actions = {r.action for r in recipients}
    if "failed" in actions:
        return Kind.BOUNCE
    return Kind.DELAYED if "delayed" in actions else Kind.UNKNOWN


def _without_repeated_codes(text: str) -> str:
    """``550-5.7.1 a\n550-5.7.1 b`` → ``550-5.7.1 a b``: the code repeated on each line."""
    first = _REPLY_CODE.search(text)
    if first is None:
        return text
    repeated = re.compile(rf"\s+{first[1]}[ -]{re.escape(first[2])}(?=\s)")
    return text[: first.end()] + repeated.sub("", text[first.end() :])


def recipient(address: str, action: str, dsn_status: str | None, diagnostic: str) -> Recipient:
    diagnostic = " ".join(_without_repeated_codes(diagnostic).split())[:MAX_DIAGNOSTIC]
    if dsn_status is None and (found := ENHANCED.search(diagnostic)):
        dsn_status = found.group(1)
    status = _failure_status(dsn_status, diagnostic) if action == "failed" else None
    return Recipient(address, action, dsn_status, diagnostic, status)


def _failure_status(dsn_status: str | None, diagnostic: str) -> DeliveryStatus:
    """The same mapping as a synchronous 5xx, with the DSN's Status in front."""
    text = f"{dsn_status} {diagnostic}" if dsn_status else diagnostic
    result = classify_reply(550, text)
    if result.outcome is not Outcome.HARD or result.status is None:
        return DeliveryStatus.FAILED
    policy_block = (dsn_status or "").startswith("5.7.") and _POLICY.search(text)
    if result.status is DeliveryStatus.FAILED and policy_block:
        return DeliveryStatus.SPAM
    if result.status is DeliveryStatus.FAILED and _NO_ACCOUNT.search(text):
        return DeliveryStatus.INVALID_ADDRESS
    return result.status
