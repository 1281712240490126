"""Devino's email API, the pure parts: its bodies read into postwire's send command,
fields postwire lacks refused by name, task rows shown in Devino's shape, and error
descriptions naming Devino's fields."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pytest
from fastapi.exceptions import RequestValidationError

from postwire_common.errors import EmptyValue, NotAvailable
from postwire_common.http.body import parse_model
from postwire_ingest.templates import render
from postwire_ingest.vendors.devino import message_command
from postwire_ingest.vendors.devino_models import (
    DevinoMessage,
    DevinoTask,
    devino_text,
    task_result,
)


def message(**fields: Any) -> dict[str, Any]:
    return {
        "Sender": {"Address": "news@shop.example", "Name": "Shop"},
        "Recipients": [{"Address": "ann@example.org", "Name": "Ann Lee"}],
        "Subject": "Hello",
        "Body": {"Html": "<p>Hi</p>", "PlainText": "Hi"},
        **fields,
    }


def parsed(body: dict[str, Any]) -> tuple[DevinoMessage, bytes]:
    raw = json.dumps(body).encode()
    return parse_model(DevinoMessage, raw), raw


def test_a_message_becomes_the_native_send_command() -> None:
    body = message(Attachments=[{"Name": "a.txt", "Content": "eA==", "ContentType": "text/plain"}])
    command = message_command(*parsed(body))
    assert command.sender == "Shop <news@shop.example>"
    assert command.to == ["Ann Lee <ann@example.org>"]
    assert (command.content.subject, command.content.text, command.content.html) == (
        "Hello",
        "Hi",
        "<p>Hi</p>",
    )
    [attachment] = command.content.attachments
    assert (attachment.filename, attachment.data) == ("a.txt", b"x")
    assert command.template is None  # no MergeFields: the body is sent as written


def test_merge_fields_fill_the_inline_body_per_recipient() -> None:
    body = message(
        Subject="Hello {{Name}}",
        Body={"PlainText": "Hi {{Name}}"},
        Recipients=[
            {"Address": "Ann@Example.ORG", "MergeFields": {"Name": "Ann"}},
            {"Address": "bob@example.net", "MergeFields": {"Name": "Bob"}},
        ],
    )
    command = message_command(*parsed(body))
    assert command.template is not None
    values = command.recipient_variables["ann@example.org"]
    assert render(command.template, values).subject == "Hello Ann"
    assert command.recipient_variables["bob@example.net"] == {"Name": "Bob"}


@pytest.mark.parametrize(
    ("body", "named"),
    [
        (message(AttachmentsIds=["f1"]), "AttachmentsIds"),
        (message(Recipients=[{"Address": "a@example.org", "ExtraData": {"k": "v"}}]), "ExtraData"),
        (message(CheckUnsubscription=False), "CheckUnsubscription"),
    ],
)
def test_fields_postwire_lacks_answer_not_available_by_name(
    body: dict[str, Any], named: str
) -> None:
    with pytest.raises(NotAvailable) as refused:
        message_command(*parsed(body))
    assert refused.value.description.startswith(named)


def test_task_fields_postwire_lacks_are_refused_and_unknown_ones_are_invalid() -> None:
    task = {
        "Name": "n",
        "Sender": {"Address": "news@shop.example"},
        "Recipients": [{"Address": "a@example.org"}],
    }
    with pytest.raises(NotAvailable, match=r"^ContactGroups"):
        parse_model(DevinoTask, json.dumps({**task, "ContactGroups": [1]}).encode())
    with pytest.raises(RequestValidationError) as unknown:
        parse_model(DevinoTask, json.dumps({**task, "Colour": "red"}).encode())
    assert unknown.value.errors()[0]["loc"] == ("body", "Colour")
    with pytest.raises(RequestValidationError) as lower:  # Devino's names only
        parse_model(DevinoTask, json.dumps({**task, "name": "n"}).encode())
    assert lower.value.errors()[0]["loc"] == ("body", "name")


def test_a_body_needs_html_or_plain_text() -> None:
    with pytest.raises(EmptyValue, match=r"^Body\.Html or Body\.PlainText"):
        message_command(*parsed(message(Body={})))


@pytest.mark.parametrize(
    ("native", "devino"),
    [
        ("from: 'x' is not a valid address", "Sender.Address: 'x' is not a valid address"),
        ("send_at is more than a year ahead", "StartDateTime is more than a year ahead"),
        ("text or html is required", "Body.PlainText or Body.Html is required"),
        ("recipients: no valid address", "Recipients: no valid address"),
        ("subject is required", "Subject is required"),
        ("a text that mentions from: nothing", "a text that mentions from: nothing"),
        ("fromage: not a field", "fromage: not a field"),
    ],
)
def test_error_texts_name_devinos_fields(native: str, devino: str) -> None:
    assert devino_text(native) == devino


def test_a_task_is_shown_in_devinos_shape() -> None:
    at = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
    row = {
        "id": "T1", "name": "spring", "sender": "Shop <news@shop.example>",
        "template_id": "X1", "send_at": at, "state": "completed", "total": 3, "invalid": 1,
        "queued": 2, "suppressed": 0, "delivered": 2, "failed": 0, "error": None,
        "created_at": at, "started_at": at, "finished_at": at,
        "invalid_rows": [{"row": 2, "address": "nope", "reason": "not an address"}],
    }  # fmt: skip
    shown = task_result(row, "Spring")
    assert shown["Sender"] == {"Address": "news@shop.example", "Name": "Shop"}
    assert (shown["Id"], shown["State"], shown["Subject"]) == ("T1", "Completed", "Spring")
    assert shown["Statistics"] == {
        "Total": 3, "Invalid": 1, "Queued": 2, "Suppressed": 0, "Delivered": 2, "Failed": 0
    }  # fmt: skip
    assert shown["InvalidRecipients"] == [{"Row": 2, "Address": "nope", "Reason": "not an address"}]
