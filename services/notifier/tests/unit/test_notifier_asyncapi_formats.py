"""What the notifier renders for queues and topics is what /asyncapi.json says it is.

``postwire_common.asyncapi`` cannot import the notifier, so this test holds the two
together: the fields and their order, each content type, and every rendered body
against the document's pattern (SIMPLIFIED) or JSON Schema (JSON, XML's fields).
"""

from __future__ import annotations

import json
import re
import xml.etree.ElementTree as ET
from datetime import UTC, datetime
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from jsonschema import Draft7Validator

from postwire_common import asyncapi
from postwire_common.schemas import DeliveryStatus, EventType, MailEvent
from postwire_notifier.formats import CONTENT_TYPES, FIELDS, render

DOCUMENT = asyncapi.document()
SCHEMAS = DOCUMENT["components"]["schemas"]
PATTERN = re.compile(SCHEMAS["AccountQueueSimplified"]["pattern"])
FIELDS_SCHEMA = Draft7Validator(SCHEMAS["AccountQueueFields"])


def event(kind: EventType, **values: Any) -> MailEvent:
    defaults: dict[str, Any] = {
        "event_id": f"E1:{kind.value}",
        "event": kind,
        "env_id": "E1",
        "msg_id": "<E1@shop.example>",
        "tenant_id": "T1",
        "account": "news@shop.example",
        "sender": "bounce@shop.example",
        "rcpt": "ann@example.org",
        "recv_time": datetime(2024, 5, 6, 7, 8, 9, tzinfo=UTC),
        "time": datetime(2024, 5, 6, 7, 8, 10, tzinfo=UTC),
    }
    return MailEvent(**(defaults | values))


def test_the_fields_are_the_documented_ones_in_order() -> None:
    assert tuple(asyncapi.ACCOUNT_QUEUE_FIELDS) == FIELDS


@pytest.mark.parametrize("fmt", list(CONTENT_TYPES))
def test_each_format_has_its_documented_content_type(fmt: str) -> None:
    name, content_type = asyncapi.ACCOUNT_FORMATS[fmt]
    assert CONTENT_TYPES[fmt].split(";")[0] == content_type
    assert DOCUMENT["components"]["messages"][name]["contentType"] == content_type
    assert name in DOCUMENT["channels"][asyncapi.ACCOUNT_QUEUE]["messages"]


def check(body: MailEvent) -> None:
    simplified, _ = render("SIMPLIFIED", body, "cn-hangzhou")
    assert PATTERN.fullmatch(simplified.decode("ascii")), simplified
    as_json, _ = render("JSON", body, "cn-hangzhou")
    assert list(FIELDS_SCHEMA.iter_errors(json.loads(as_json))) == []
    as_xml, _ = render("XML", body, "cn-hangzhou")
    values = {child.tag: child.text or "" for child in ET.fromstring(as_xml)}  # noqa: S314
    assert list(FIELDS_SCHEMA.iter_errors(values)) == []


@pytest.mark.parametrize("kind", list(EventType))
def test_every_event_type_renders_as_documented(kind: EventType) -> None:
    check(event(kind, err_code=550, err_msg="550 5.1.1 <ann@example.org>: no such user"))
    check(event(kind, status=DeliveryStatus.SPAM, url="https://x.example/?a=1&b=2"))


@settings(max_examples=200, deadline=None)
@given(
    text=st.text(max_size=40),
    code=st.none() | st.integers(min_value=200, max_value=599),
    kind=st.sampled_from(list(EventType)),
)
def test_any_values_render_as_documented(text: str, code: int | None, kind: EventType) -> None:
    check(event(kind, account=text, rcpt=text, err_msg=text or None, err_code=code))
