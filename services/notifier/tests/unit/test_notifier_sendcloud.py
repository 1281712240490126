"""SendCloud-format webhook pushes: SendCloud's event names and fields, form-encoded,
signed like every push (vendors/sendcloud.py)."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qs

import pytest

from postwire_common.schemas import EventType, MailEvent
from postwire_notifier.signature import signed, verify
from postwire_notifier.vendors.sendcloud import EVENT_NAMES, form_request, push_fields

AT = datetime(2024, 5, 6, 7, 8, 10, tzinfo=UTC)
SENDCLOUD_EVENTS = {
    "request", "deliver", "open", "click", "unsubscribe", "report_spam", "invalid",
    "soft_bounce",
}  # fmt: skip


def event(kind: EventType, **fields: Any) -> MailEvent:
    values: dict[str, Any] = {
        "event_id": f"E1:{kind.value}",
        "event": kind,
        "env_id": "E1",
        "msg_id": "<E1@shop.example>",
        "tenant_id": "T1",
        "account": "news@shop.example",
        "sender": "news@shop.example",
        "rcpt": "ann@example.org",
        "label": "orders",
        "recv_time": AT,
        "time": AT,
        **fields,
    }
    return MailEvent(**values)


@pytest.mark.parametrize(
    ("kind", "name"),
    [
        (EventType.REQUEST, "request"),
        (EventType.DELIVERED, "deliver"),
        (EventType.SOFT_BOUNCE, "soft_bounce"),
        (EventType.FAILED, "invalid"),
        (EventType.INVALID, "invalid"),
        (EventType.OPEN, "open"),
        (EventType.CLICK, "click"),
        (EventType.UNSUBSCRIBE, "unsubscribe"),
        (EventType.SPAM_REPORT, "report_spam"),
    ],
)
def test_every_event_has_a_sendcloud_name(kind: EventType, name: str) -> None:
    assert push_fields(event(kind))["event"] == name


def test_names_are_sendclouds_own() -> None:
    assert set(EVENT_NAMES) == set(EventType)
    assert set(EVENT_NAMES.values()) == SENDCLOUD_EVENTS


def test_deliver_carries_both_spellings_of_id_and_recipient() -> None:
    fields = push_fields(event(EventType.DELIVERED))
    assert fields["emailId"] == fields["message_id"] == "E1"
    assert fields["recipient"] == fields["email"] == "ann@example.org"
    assert fields["labelId"] == "orders"


def test_request_lists_its_recipient() -> None:
    fields = push_fields(event(EventType.REQUEST, api_user="shop.web"))
    assert json.loads(fields["recipientArray"]) == ["ann@example.org"]
    assert json.loads(fields["emailIds"]) == ["E1"]
    assert fields["apiUser"] == fields["category"] == "shop.web"


def test_click_carries_url_and_who() -> None:
    fields = push_fields(
        event(EventType.CLICK, url="https://shop.example/a", ip="192.0.2.9", user_agent="UA/1")
    )
    assert (fields["url"], fields["ip"], fields["explorerName"]) == (
        "https://shop.example/a", "192.0.2.9", "UA/1",
    )  # fmt: skip


def test_bounce_carries_the_reply() -> None:
    fields = push_fields(event(EventType.FAILED, err_code=550, err_msg="5.1.1 no such user"))
    assert (fields["message"], fields["smtpCode"]) == ("5.1.1 no such user", 550)


def test_form_body_is_signed_like_any_push() -> None:
    fields = signed(push_fields(event(EventType.DELIVERED)), "key", "tok", now=1700000000)
    args = form_request(fields)
    assert args["headers"]["Content-Type"] == "application/x-www-form-urlencoded"
    form = {k: v[0] for k, v in parse_qs(args["content"].decode(), keep_blank_values=True).items()}
    assert form["event"] == "deliver"
    assert verify("key", int(form["timestamp"]), form["token"], form["signature"])
