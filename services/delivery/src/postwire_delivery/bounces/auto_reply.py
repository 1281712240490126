"""Auto-replies: RFC 3834's ``Auto-Submitted`` and what vacation programs do instead.

An out-of-office notice comes back to our bounce address like a bounce, but it says nothing
about delivery: it is reported as ``auto_reply`` and never counts as a failure.
"""

from __future__ import annotations

import re
from email.header import decode_header, make_header
from email.message import Message

from postwire_delivery.bounces.parts import header
from postwire_delivery.bounces.report import BounceReport, Kind

_VACATION = re.compile(
    r"^\s*(?:out of (?:the )?office|automatic reply|auto(?:matic)?[- ]?(?:reply|response)|"
    r"auto:|autoreply|vacation|away from|abwesenheit|réponse automatique|"
    r"respuesta automática|risposta automatica|automatisch antwoord)",
    re.IGNORECASE | re.MULTILINE,
)


def auto_reply_report(msg: Message) -> BounceReport | None:
    signal = next(
        (
            name
            for name, present in (
                ("auto-submitted", header(msg, "Auto-Submitted").lower() not in ("", "no")),
                ("x-autoreply", bool(header(msg, "X-Autoreply"))),
                ("x-autorespond", bool(header(msg, "X-Autorespond"))),
                ("precedence", header(msg, "Precedence").lower() == "auto_reply"),
                ("subject", bool(_VACATION.search(_subject(msg)))),
            )
            if present
        ),
        None,
    )
    return BounceReport(Kind.AUTO_REPLY, signal) if signal else None


def _subject(msg: Message) -> str:
    raw = header(msg, "Subject")
    try:
        return str(make_header(decode_header(raw)))
    except (ValueError, LookupError, UnicodeError):  # a broken encoded-word: read it raw
        return raw
