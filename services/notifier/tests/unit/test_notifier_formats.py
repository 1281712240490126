"""Topic and queue message bodies (API.md, "Queue/topic message format"; seed 001)."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from datetime import UTC, datetime, timedelta, timezone
from typing import Any
from urllib.parse import parse_qs

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from postwire_common.schemas import DeliveryStatus, EventType, MailEvent
from postwire_notifier.formats import (
    FIELDS,
    fields,
    json_body,
    render,
    simplified,
    xml_body,
)

RECV = datetime(2024, 5, 6, 7, 8, 9, tzinfo=UTC)
AT = datetime(2024, 5, 6, 7, 8, 10, 123456, tzinfo=UTC)

# API.md and the seed, verbatim.
SEED_DELIVERED = (
    b"env_id=457323378&msg_id=77041400535408&account=test@test.com&from=test@test.com"
    b"&rcpt=abc@abc.com&recv_time=2017-04-14 11:44:47&end_time=2017-04-14 11:44:48"
    b"&status=0&event=deliver&region=cn-hangzhou&err_code=250&err_msg=250 Send Mail OK"
)
SEED_FAILED = (
    b"env_id=457323379&msg_id=77041400535409&account=test@test.com&from=test@test.com"
    b"&rcpt=abc@abc.com&recv_time=2017-04-14 11:44:48&end_time=2017-04-14 11:44:49"
    b"&status=2&event=deliver&region=cn-hangzhou&err_code=550&err_msg=550 No Such User"
)


def event(kind: EventType = EventType.DELIVERED, **values: Any) -> MailEvent:
    defaults: dict[str, Any] = {
        "event_id": f"E1:{kind.value}",
        "event": kind,
        "env_id": "E1",
        "msg_id": "<E1@shop.example>",
        "tenant_id": "T1",
        "account": "news@shop.example",
        "sender": "bounce@shop.example",
        "rcpt": "ann@example.org",
        "label": "orders",
        "recv_time": RECV,
        "time": AT,
    }
    return MailEvent(**(defaults | values))


def seed_event(kind: EventType, n: int, status: DeliveryStatus, code: int, text: str) -> MailEvent:
    recv = datetime(2017, 4, 14, 11, 44, 47 + n, tzinfo=UTC)
    return event(
        kind,
        env_id=f"45732337{8 + n}",
        msg_id=f"7704140053540{8 + n}",
        account="test@test.com",
        sender="test@test.com",
        rcpt="abc@abc.com",
        status=status,
        err_code=code,
        err_msg=text,
        recv_time=recv,
        time=recv + timedelta(seconds=1),
    )


def parsed(body: bytes) -> dict[str, str]:
    values = parse_qs(body.decode("ascii"), keep_blank_values=True, strict_parsing=True)
    assert all(len(v) == 1 for v in values.values())
    return {name: v[0] for name, v in values.items()}


def from_json(body: bytes) -> dict[str, str]:
    values = json.loads(body.decode("utf-8"))
    assert isinstance(values, dict)
    return values


def from_xml(body: bytes) -> dict[str, str]:
    assert body.startswith(b'<?xml version="1.0" encoding="UTF-8"?>')
    root = ET.fromstring(body)  # noqa: S314 - our own output
    assert root.tag == "Message"
    assert all(len(child) == 0 for child in root)
    return {child.tag: child.text or "" for child in root}


# --- SIMPLIFIED: the seed's bytes -------------------------------------------------------


def test_api_md_example_byte_for_byte() -> None:
    e = seed_event(EventType.DELIVERED, 0, DeliveryStatus.DELIVERED, 250, "250 Send Mail OK")
    assert simplified(e, "cn-hangzhou") == SEED_DELIVERED


def test_seed_failure_example_byte_for_byte() -> None:
    e = seed_event(EventType.FAILED, 1, DeliveryStatus.INVALID_ADDRESS, 550, "550 No Such User")
    assert simplified(e, "cn-hangzhou") == SEED_FAILED


def test_delivered_message() -> None:
    e = event(status=DeliveryStatus.DELIVERED, err_code=250, err_msg="250 2.0.0 Ok: queued")
    assert simplified(e, "eu-1") == (
        b"env_id=E1&msg_id=<E1@shop.example>&account=news@shop.example"
        b"&from=bounce@shop.example&rcpt=ann@example.org&recv_time=2024-05-06 07:08:09"
        b"&end_time=2024-05-06 07:08:10&status=0&event=deliver&region=eu-1"
        b"&err_code=250&err_msg=250 2.0.0 Ok: queued"
    )


def test_failed_message() -> None:
    e = event(
        EventType.FAILED,
        status=DeliveryStatus.SPAM,
        err_code=554,
        err_msg="554 5.7.1 <ann@example.org>: rejected as spam; score=9.1 (a+b 100%)",
    )
    assert simplified(e, "eu-1") == (
        b"env_id=E1&msg_id=<E1@shop.example>&account=news@shop.example"
        b"&from=bounce@shop.example&rcpt=ann@example.org&recv_time=2024-05-06 07:08:09"
        b"&end_time=2024-05-06 07:08:10&status=3&event=deliver&region=eu-1&err_code=554"
        b"&err_msg=554 5.7.1 <ann@example.org>: rejected as spam; score%3D9.1 (a%2Bb 100%25)"
    )


def test_fields_in_the_seeds_order() -> None:
    body = simplified(event(), "r").decode("ascii")
    assert [pair.split("=", 1)[0] for pair in body.split("&")] == list(FIELDS)
    assert list(fields(event(), "r")) == list(FIELDS)


def test_times_are_utc_without_fraction() -> None:
    plus8 = timezone(timedelta(hours=8))
    e = event(recv_time=datetime(2024, 5, 6, 15, 8, 9, tzinfo=plus8), time=AT)
    values = fields(e, "r")
    assert values["recv_time"] == "2024-05-06 07:08:09"
    assert values["end_time"] == "2024-05-06 07:08:10"
    naive = event(recv_time=datetime(2024, 5, 6, 7, 8, 9))  # taken as UTC
    assert fields(naive, "r")["recv_time"] == "2024-05-06 07:08:09"


# --- event names and statuses --------------------------------------------------------------


@pytest.mark.parametrize(
    ("kind", "status", "name", "written"),
    [
        (EventType.REQUEST, None, "deliver", ""),
        (EventType.SOFT_BOUNCE, None, "deliver", ""),
        (EventType.SOFT_BOUNCE, DeliveryStatus.FAILED, "deliver", ""),
        (EventType.DELIVERED, None, "deliver", "0"),
        (EventType.DELIVERED, DeliveryStatus.DELIVERED, "deliver", "0"),
        (EventType.FAILED, None, "deliver", "4"),
        (EventType.FAILED, DeliveryStatus.INVALID_ADDRESS, "deliver", "2"),
        (EventType.FAILED, DeliveryStatus.SPAM, "deliver", "3"),
        (EventType.FAILED, DeliveryStatus.FAILED, "deliver", "4"),
        (EventType.INVALID, None, "deliver", "2"),
        (EventType.INVALID, DeliveryStatus.INVALID_ADDRESS, "deliver", "2"),
        (EventType.OPEN, None, "open", ""),
        (EventType.CLICK, None, "click", ""),
        (EventType.UNSUBSCRIBE, None, "unsubscribe", ""),
        (EventType.SPAM_REPORT, DeliveryStatus.DELIVERED, "spam_report", ""),
    ],
)
def test_event_name_and_status(
    kind: EventType, status: DeliveryStatus | None, name: str, written: str
) -> None:
    values = parsed(simplified(event(kind, status=status), "r"))
    assert values["event"] == name
    assert values["status"] == written


def test_soft_bounce_keeps_its_reply() -> None:
    e = event(EventType.SOFT_BOUNCE, err_code=451, err_msg="451 4.7.1 try later")
    values = parsed(simplified(e, "r"))
    assert (values["status"], values["err_code"], values["err_msg"]) == (
        "",
        "451",
        "451 4.7.1 try later",
    )


def test_missing_values_are_empty() -> None:
    body = simplified(event(EventType.REQUEST), "r")
    assert body.endswith(b"&status=&event=deliver&region=r&err_code=&err_msg=")
    assert parsed(body)["err_msg"] == ""
    assert from_json(json_body(event(EventType.REQUEST), "r"))["err_code"] == ""
    assert from_xml(xml_body(event(EventType.REQUEST), "r"))["err_msg"] == ""


# --- encoding -----------------------------------------------------------------------------

NASTY = [
    "a&b=c+d%e f",
    "line\r\nInjected: header",
    "Zoë 日本",
    "550 5.1.1 <a@b> user unknown; a=b&c",
    "%41%2B+&&==",
    "tab\there\x00nul\x7fdel\x85nel",
    "emoji 📬 and \u2028 separator",
    " leading and trailing ",
    "#fragment?query=1",
]


@pytest.mark.parametrize("text", NASTY)
def test_nasty_values_round_trip(text: str) -> None:
    e = event(
        EventType.FAILED,
        msg_id=f"<{text}@x>",
        account=text,
        sender=text,
        rcpt=text,
        err_code=550,
        err_msg=text,
    )
    body = simplified(e, text)
    assert b"\r" not in body
    assert b"\n" not in body
    assert body.isascii()
    values = parsed(body)
    assert values == fields(e, text)
    assert values["err_msg"] == values["region"] == values["from"] == text
    assert values["msg_id"] == f"<{text}@x>"


def test_only_the_reserved_characters_are_encoded() -> None:
    e = event(err_msg="550 5.1.1 <a@b> user unknown; a=b&c", rcpt="Zoë@日本.jp")
    body = simplified(e, "r")
    assert body.endswith(b"&err_msg=550 5.1.1 <a@b> user unknown; a%3Db%26c")
    assert b"&rcpt=Zo%C3%AB@%E6%97%A5%E6%9C%AC.jp&" in body


def test_lone_surrogates_become_replacement_characters() -> None:
    e = event(err_msg="bad \ud800 text")
    assert parsed(simplified(e, "r"))["err_msg"] == "bad \ufffd text"
    assert from_json(json_body(e, "r"))["err_msg"] == "bad \ufffd text"
    assert from_xml(xml_body(e, "r"))["err_msg"] == "bad \ufffd text"


# --- JSON and XML carry the same fields ---------------------------------------------------


@pytest.mark.parametrize("text", NASTY)
def test_json_and_xml_carry_the_simplified_fields(text: str) -> None:
    e = event(EventType.FAILED, status=DeliveryStatus.FAILED, err_code=550, err_msg=text)
    expected = parsed(simplified(e, "eu-1"))
    assert from_json(json_body(e, "eu-1")) == expected
    as_xml = dict(expected, err_msg=xml_safe(text))
    assert from_xml(xml_body(e, "eu-1")) == as_xml


def test_json_is_one_flat_object_in_the_seeds_order() -> None:
    body = json_body(event(err_msg="Zoë"), "r")
    assert list(from_json(body)) == list(FIELDS)
    assert "Zoë".encode() in body  # UTF-8, not \u escapes


def test_xml_shape() -> None:
    body = xml_body(event(err_msg="a < b & c > d"), "r")
    assert body.startswith(b'<?xml version="1.0" encoding="UTF-8"?>\n<Message><env_id>E1</env_id>')
    assert b"<err_msg>a &lt; b &amp; c &gt; d</err_msg></Message>" in body
    assert list(from_xml(body)) == list(FIELDS)


def test_xml_keeps_line_breaks_exactly() -> None:
    e = event(err_msg="a\r\nb\rc\td")
    assert from_xml(xml_body(e, "r"))["err_msg"] == "a\r\nb\rc\td"


def xml_safe(text: str) -> str:
    """What XML 1.0 can carry of ``text``: forbidden characters become U+FFFD."""
    allowed = {"\t", "\n", "\r"}
    return "".join(
        "\ufffd" if (c < " " and c not in allowed) or c in "\ufffe\uffff" else c for c in text
    )


# --- render -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("fmt", "content_type", "function"),
    [
        ("SIMPLIFIED", "text/plain; charset=utf-8", simplified),
        ("JSON", "application/json; charset=utf-8", json_body),
        ("XML", "text/xml; charset=utf-8", xml_body),
    ],
)
def test_render(fmt: str, content_type: str, function: Any) -> None:
    e = event()
    assert render(fmt, e, "r") == (function(e, "r"), content_type)


@pytest.mark.parametrize("fmt", ["simplified", "Json", "xml", "", "YAML"])
def test_render_refuses_unknown_formats(fmt: str) -> None:
    with pytest.raises(ValueError, match="unknown content format"):
        render(fmt, event(), "r")


# --- property: any text survives ----------------------------------------------------------

TEXT = st.text(alphabet=st.characters(exclude_categories=["Cs"]))


@settings(max_examples=300, deadline=None)
@given(
    env_id=TEXT,
    msg_id=TEXT,
    account=TEXT,
    sender=TEXT,
    rcpt=TEXT,
    err_msg=st.none() | TEXT,
    region=TEXT,
    err_code=st.none() | st.integers(min_value=0, max_value=999),
)
def test_any_text_round_trips(
    env_id: str,
    msg_id: str,
    account: str,
    sender: str,
    rcpt: str,
    err_msg: str | None,
    region: str,
    err_code: int | None,
) -> None:
    e = event(
        EventType.FAILED,
        env_id=env_id,
        msg_id=msg_id,
        account=account,
        sender=sender,
        rcpt=rcpt,
        err_code=err_code,
        err_msg=err_msg,
    )
    body = simplified(e, region)
    assert body.isascii()
    assert b"\n" not in body
    assert b"\r" not in body
    values = parsed(body)
    assert list(values) == list(FIELDS)
    assert values["env_id"] == env_id
    assert values["msg_id"] == msg_id
    assert values["account"] == account
    assert values["from"] == sender
    assert values["rcpt"] == rcpt
    assert values["region"] == region
    assert values["err_msg"] == (err_msg or "")
    assert values["err_code"] == ("" if err_code is None else str(err_code))
    assert from_json(json_body(e, region)) == values
    assert from_xml(xml_body(e, region)) == {k: xml_safe(v) for k, v in values.items()}
