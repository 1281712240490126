"""SendCloud's webhook format: its event names and fields, form-encoded.

A webhook created with ``format: "sendcloud"`` gets the same events, on the same retry
schedule and with the same signature (``hex(HMAC-SHA256(app_key, timestamp + token))``)
as any other; only the body differs, so a receiver written for SendCloud's WebHook
("事件说明" in SendCloud's guide) works unchanged:

    ============  ===============  =================================================
    postwire      SendCloud event  notes
    ============  ===============  =================================================
    request       request          one recipient per push (recipientSize=1)
    delivered     deliver
    soft_bounce   soft_bounce
    failed        invalid          SendCloud reports hard bounces as invalid mail
    invalid       invalid          suppressed at accept time
    open          open
    click         click            with url
    unsubscribe   unsubscribe
    spam_report   report_spam
    ============  ===============  =================================================

Fields carry both spellings receivers use: v2's ``emailId``/``recipient`` and v1's
``message_id``/``email``. ``labelId`` is our label's name (postwire labels have no
numeric id). ``explorerName`` holds the whole User-Agent (we do not parse it).
"""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import urlencode

from postwire_common.schemas import EventType, MailEvent

FORMAT = "sendcloud"

EVENT_NAMES: dict[EventType, str] = {
    EventType.REQUEST: "request",
    EventType.DELIVERED: "deliver",
    EventType.SOFT_BOUNCE: "soft_bounce",
    EventType.FAILED: "invalid",
    EventType.INVALID: "invalid",
    EventType.OPEN: "open",
    EventType.CLICK: "click",
    EventType.UNSUBSCRIBE: "unsubscribe",
    EventType.SPAM_REPORT: "report_spam",
}

_TRACKING = frozenset({EventType.OPEN, EventType.CLICK, EventType.UNSUBSCRIBE})


def push_fields(event: MailEvent) -> dict[str, Any]:
    """The form fields of one push, before ``timestamp``, ``token`` and ``signature``."""
    fields: dict[str, Any] = {
        "event": EVENT_NAMES[event.event],
        "message": event.err_msg or "",
        "emailId": event.env_id,
        "message_id": event.env_id,
        "messageId": event.msg_id,
        "recipient": event.rcpt,
        "email": event.rcpt,
        "from": event.sender,
        "labelId": event.label or "",
    }
    if event.api_user:
        fields["apiUser"] = fields["category"] = event.api_user
    if event.event is EventType.REQUEST:
        fields["recipientArray"] = json.dumps([event.rcpt])
        fields["emailIds"] = json.dumps([event.env_id])
        fields["recipientSize"] = 1
    if event.event is EventType.CLICK:
        fields["url"] = event.url or ""
    if event.event in _TRACKING:
        fields["ip"] = event.ip or ""
        fields["explorerName"] = event.user_agent or ""
    if event.err_code is not None:
        fields["smtpCode"] = event.err_code
    return fields


def form_request(signed_fields: dict[str, Any]) -> dict[str, Any]:
    """``SafeClient.request`` arguments posting the signed fields as a form."""
    body = urlencode({k: "" if v is None else str(v) for k, v in signed_fields.items()})
    return {
        "content": body.encode(),
        "headers": {"Content-Type": "application/x-www-form-urlencoded"},
    }
