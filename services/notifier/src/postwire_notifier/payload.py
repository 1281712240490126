"""What a push carries: the event's fields as they apply (API.md, "Webhook push")."""

from __future__ import annotations

from typing import Any

from postwire_common.schemas import MNS_EVENT_TYPES, EventType, MailEvent

_TRACKING = frozenset({EventType.OPEN, EventType.CLICK, EventType.UNSUBSCRIBE})


def push_body(event: MailEvent, region: str) -> dict[str, Any]:
    body: dict[str, Any] = {
        "event": event.event.value,
        "type": MNS_EVENT_TYPES[event.event],
        "env_id": event.env_id,
        "msg_id": event.msg_id,
        "account": event.account,
        "from": event.sender,
        "rcpt": event.rcpt,
        "label": event.label,
        "status": int(event.status) if event.status is not None else None,
        "err_code": event.err_code,
        "err_msg": event.err_msg,
        "region": region,
        "recv_time": event.recv_time.isoformat(),
        "time": event.time.isoformat(),
    }
    if event.event is EventType.CLICK:
        body["url"] = event.url
    if event.event in _TRACKING:  # who opened, clicked or unsubscribed (SendCloud: IP, device)
        body["ip"] = event.ip
        body["user_agent"] = event.user_agent
        body["machine"] = event.machine
    return body
