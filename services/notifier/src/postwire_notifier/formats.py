"""The body of a topic or queue message, in a subscription's content format.

The fields and the ``SIMPLIFIED`` line are the Aliyun DirectMail seed's (``seeds/001_…``,
"邮件推送异步通知消息", quoted in API.md "Queue/topic message format"); the seed's two
examples, for a success and a failure, are both reproduced byte for byte by the tests::

    event ─► fields() ─┬─► simplified()  env_id=…&msg_id=…&…&err_msg=…      text/plain
      (12 strings,     ├─► json_body()   {"env_id": "…", …, "err_msg": "…"}  application/json
       seed's order)   └─► xml_body()    <Message><env_id>…</env_id>…        text/xml

Choices, where the seed is silent or our events are richer than its two:

- ``event`` is ``deliver`` for every ``Deliver:*`` event (``request``, ``delivered``,
  ``soft_bounce``, ``failed``, ``invalid``), as in both seed examples. The seed has no
  tracking events; ``Track:*`` events carry the webhook name of API.md's "Events" table:
  ``open``, ``click``, ``unsubscribe``, ``spam_report``.
- ``status`` is the seed's "投递完成结果状态", the result of a *finished* delivery: 0
  delivered, 2 invalid address, 3 spam, 4 failed. Only ``delivered``, ``failed`` and
  ``invalid`` carry it (the event's own status, else 0, 4 and 2 respectively); ``request``
  and ``soft_bounce`` (delivery not finished) and tracking events leave it empty, so a
  reader never takes a retry for a result. ``err_code``/``err_msg`` are written whenever
  the event has them (a soft bounce's temporary reply, for one).
- ``recv_time`` is when the message was accepted, ``end_time`` when this event happened;
  both ``YYYY-MM-DD HH:MM:SS`` in UTC (naive datetimes are taken as UTC; sub-seconds are
  dropped). A missing value is the empty string in every format.
- ``SIMPLIFIED`` writes values as the seed does (spaces, ``:``, ``@``, ``<``, ``>`` stay)
  and percent-encodes (UTF-8) only ``&``, ``=``, ``+``, ``%``, control characters (so the
  body stays one line) and non-ASCII, so the body is ASCII and
  ``urllib.parse.parse_qs(body, keep_blank_values=True)`` gives back every value exactly.
- The seed documents no ``JSON`` or ``XML`` shape (only MNS's format names), so ``JSON`` is
  one flat object and ``XML`` one ``<Message>`` element with a child per field, both with
  the same names, order and string values as ``SIMPLIFIED``, unencoded, in UTF-8. XML 1.0
  cannot carry most control characters even as references: those become U+FFFD there
  (CR, LF and TAB are kept, as character references). Lone surrogates, which no UTF-8
  text can carry, become U+FFFD in every format.
- ``label`` and a click's ``url`` are not among the seed's fields; webhook pushes carry
  them (:mod:`postwire_notifier.payload`).
"""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from urllib.parse import quote

from postwire_common.schemas import MNS_EVENT_TYPES, DeliveryStatus, EventType, MailEvent

__all__ = ["CONTENT_TYPES", "FIELDS", "fields", "json_body", "render", "simplified", "xml_body"]

FIELDS = (
    "env_id", "msg_id", "account", "from", "rcpt", "recv_time", "end_time",
    "status", "event", "region", "err_code", "err_msg",
)  # fmt: skip

CONTENT_TYPES = {
    "SIMPLIFIED": "text/plain; charset=utf-8",
    "JSON": "application/json; charset=utf-8",
    "XML": "text/xml; charset=utf-8",
}

# Terminal delivery events and the status they stand for when the event names none.
_FINISHED: dict[EventType, DeliveryStatus] = {
    EventType.DELIVERED: DeliveryStatus.DELIVERED,
    EventType.FAILED: DeliveryStatus.FAILED,
    EventType.INVALID: DeliveryStatus.INVALID_ADDRESS,
}

_SURROGATE = re.compile("[\ud800-\udfff]")
# Besides ASCII controls and DEL, these are the printable ASCII characters quote() keeps.
_SAFE = "".join(chr(c) for c in range(0x20, 0x7F) if chr(c) not in "&=+%")
# Characters XML 1.0 cannot hold at all (https://www.w3.org/TR/xml/#charsets).
_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")
_XML_ESCAPES = str.maketrans(
    {"&": "&amp;", "<": "&lt;", ">": "&gt;", "\r": "&#13;", "\n": "&#10;", "\t": "&#9;"}
)


def _time(value: datetime) -> str:
    if value.tzinfo is not None:
        value = value.astimezone(UTC)
    return value.strftime("%Y-%m-%d %H:%M:%S")


def _text(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, int):  # DeliveryStatus is an IntEnum: write its number
        return str(int(value))
    return _SURROGATE.sub("\ufffd", str(value))


def _event_name(event: EventType) -> str:
    if MNS_EVENT_TYPES[event].startswith("Deliver:"):
        return "deliver"
    return event.value


def _status(event: MailEvent) -> DeliveryStatus | None:
    default = _FINISHED.get(event.event)
    if default is None:
        return None
    return event.status if event.status is not None else default


def fields(event: MailEvent, region: str) -> dict[str, str]:
    """The seed's twelve fields, in its order, as unencoded strings ("" when missing)."""
    values: dict[str, object] = {
        "env_id": event.env_id,
        "msg_id": event.msg_id,
        "account": event.account,
        "from": event.sender,
        "rcpt": event.rcpt,
        "recv_time": _time(event.recv_time),
        "end_time": _time(event.time),
        "status": _status(event),
        "event": _event_name(event.event),
        "region": region,
        "err_code": event.err_code,
        "err_msg": event.err_msg,
    }
    return {name: _text(values[name]) for name in FIELDS}


def simplified(event: MailEvent, region: str) -> bytes:
    """The seed's one-line ``name=value&…`` body (ASCII)."""
    pairs = (f"{name}={quote(value, safe=_SAFE)}" for name, value in fields(event, region).items())
    return "&".join(pairs).encode("ascii")


def json_body(event: MailEvent, region: str) -> bytes:
    """One flat JSON object with the same fields (UTF-8)."""
    return json.dumps(fields(event, region), ensure_ascii=False).encode("utf-8")


def xml_body(event: MailEvent, region: str) -> bytes:
    """``<Message>`` with one child element per field (UTF-8, with a declaration)."""
    children = "".join(
        f"<{name}>{_xml_text(value)}</{name}>" for name, value in fields(event, region).items()
    )
    return f'<?xml version="1.0" encoding="UTF-8"?>\n<Message>{children}</Message>'.encode()


def _xml_text(value: str) -> str:
    return _NOT_XML.sub("\ufffd", value).translate(_XML_ESCAPES)


def render(fmt: str, event: MailEvent, region: str) -> tuple[bytes, str]:
    """(body, content type) of ``event`` in content format ``fmt`` (MNS's names)."""
    if fmt == "SIMPLIFIED":
        body = simplified(event, region)
    elif fmt == "JSON":
        body = json_body(event, region)
    elif fmt == "XML":
        body = xml_body(event, region)
    else:
        raise ValueError(f"unknown content format {fmt!r}: SIMPLIFIED, JSON or XML")
    return body, CONTENT_TYPES[fmt]
