"""What a webhook push carries (API.md, "Webhook push")."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pytest

from postwire_common.schemas import DeliveryStatus, EventType, MailEvent
from postwire_notifier.payload import push_body

RECV = datetime(2024, 5, 6, 7, 8, 9, tzinfo=UTC)
AT = datetime(2024, 5, 6, 7, 8, 10, tzinfo=UTC)
API_FIELDS = {
    "event", "env_id", "msg_id", "account", "from", "rcpt", "status", "err_code", "err_msg",
    "label",
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
        "recv_time": RECV,
        "time": AT,
    }
    values.update(fields)
    return MailEvent(**values)


@pytest.mark.parametrize("kind", list(EventType))
def test_push_body_has_the_api_fields(kind: EventType) -> None:
    body = push_body(event(kind), region="eu-1")
    assert set(body) >= API_FIELDS
    assert body["event"] == kind.value
    assert body["env_id"] == "E1"
    assert body["msg_id"] == "<E1@shop.example>"
    assert body["account"] == "news@shop.example"
    assert body["rcpt"] == "ann@example.org"
    assert body["label"] == "orders"


@pytest.mark.parametrize("kind", list(EventType))
def test_sender_is_called_from(kind: EventType) -> None:
    body = push_body(event(kind, sender="bounce@shop.example"), region="eu-1")
    assert body["from"] == "bounce@shop.example"
    assert "sender" not in body


def test_click_carries_the_url() -> None:
    body = push_body(event(EventType.CLICK, url="https://shop.example/p?id=1"), region="r")
    assert body["url"] == "https://shop.example/p?id=1"


@pytest.mark.parametrize("kind", [k for k in EventType if k is not EventType.CLICK])
def test_only_click_carries_a_url(kind: EventType) -> None:
    assert "url" not in push_body(event(kind, url="https://shop.example/"), region="r")


@pytest.mark.parametrize(
    ("kind", "status", "code", "text"),
    [
        (EventType.DELIVERED, DeliveryStatus.DELIVERED, 250, "250 Send Mail OK"),
        (EventType.FAILED, DeliveryStatus.INVALID_ADDRESS, 550, "550 No Such User"),
        (EventType.FAILED, DeliveryStatus.SPAM, 554, "554 rejected as spam"),
        (EventType.FAILED, DeliveryStatus.FAILED, 552, "552 too big"),
    ],
)
def test_status_and_error_fields(
    kind: EventType, status: DeliveryStatus, code: int, text: str
) -> None:
    body = push_body(event(kind, status=status, err_code=code, err_msg=text), region="r")
    assert body["status"] == int(status)
    assert type(body["status"]) is int
    assert (body["err_code"], body["err_msg"]) == (code, text)


def test_delivered_status_zero_is_not_dropped() -> None:
    body = push_body(event(EventType.DELIVERED, status=DeliveryStatus.DELIVERED), region="r")
    assert body["status"] == 0
    assert body["status"] is not None


def test_events_without_a_status_push_null() -> None:
    body = push_body(event(EventType.OPEN), region="r")
    assert body["status"] is None
    assert body["err_code"] is None
    assert body["err_msg"] is None


def test_push_body_is_json_serialisable() -> None:
    body = push_body(event(EventType.CLICK, url="https://shop.example/"), region="r")
    assert json.loads(json.dumps(body)) == body


@pytest.mark.parametrize("kind", [EventType.OPEN, EventType.CLICK, EventType.UNSUBSCRIBE])
def test_tracking_pushes_say_who(kind: EventType) -> None:
    hit = event(kind, ip="198.51.100.7", user_agent="Mozilla/5.0 (iPhone)", machine="scanner")
    body = push_body(hit, region="r")
    assert (body["ip"], body["user_agent"], body["machine"]) == (
        "198.51.100.7",
        "Mozilla/5.0 (iPhone)",
        "scanner",
    )


@pytest.mark.parametrize("kind", [EventType.DELIVERED, EventType.FAILED, EventType.REQUEST])
def test_delivery_pushes_have_no_reader_fields(kind: EventType) -> None:
    assert not {"ip", "user_agent", "machine"} & set(push_body(event(kind), region="r"))
