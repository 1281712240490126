"""Sending with a template (Tencent SendTemplatedMail): shared and per-recipient values
arrive as written (HTML-escaped in HTML, never evaluated), a missing value answers
missing_macros and sends nothing, and a template is sent only by API users of its type."""

from __future__ import annotations

from email.message import EmailMessage
from typing import Any

import httpx

from postwire_testkit.api import Tenant, envelope
from postwire_testkit.smtp import SmtpSink
from postwire_testkit.wait import eventually


def result(answer: httpx.Response, status: int = 200) -> Any:
    assert answer.status_code == status, answer.text
    return envelope(answer)["Result"]


async def template(tenant: Tenant, kind: str = "trigger", **fields: Any) -> str:
    body = {
        "name": f"welcome_{kind}",
        "type": kind,
        "subject": "Hello {{name}}",
        "text": "Dear {{name}}, your code is {{code}}.",
        "html": "<p>Dear {{name}}, your code is <b>{{code}}</b>.</p>",
        **fields,
    }
    return str(result(await tenant.client("ingest").post("/v1/templates", json=body), 201)["id"])


async def received(mx: SmtpSink, rcpt: str) -> EmailMessage:
    async def arrived() -> list[Any]:
        return mx.for_rcpt(rcpt)

    [copy] = await eventually(arrived, what=f"mail for {rcpt}")
    return copy.message


def part(message: EmailMessage, subtype: str) -> str:
    found = message.get_body(preferencelist=(subtype,))
    assert found is not None
    return str(found.get_content())


async def test_shared_and_per_recipient_values_arrive_literally(
    tenant: Tenant, mx: SmtpSink
) -> None:
    template_id = await template(tenant)
    ann, bob = f"ann.{tenant.name}@example.org", f"bob.{tenant.name}@example.net"
    answer = await tenant.client("ingest").post(
        "/v1/messages",
        json={
            "from": tenant.sender,
            "to": [ann, {"address": bob, "variables": {"name": "Bob <b>&", "code": "{{name}}"}}],
            "template_id": template_id,
            "variables": {"name": "Ann", "code": "${7*7}"},
        },
    )
    messages = result(answer, 202)["messages"]
    assert [m["rcpt"] for m in messages] == [ann, bob]

    to_ann = await received(mx, ann)
    assert to_ann["Subject"] == "Hello Ann"
    assert "Dear Ann, your code is ${7*7}." in part(to_ann, "plain")
    assert "<b>${7*7}</b>" in part(to_ann, "html")
    to_bob = await received(mx, bob)
    assert to_bob["Subject"] == "Hello Bob <b>&"
    assert "Dear Bob <b>&, your code is {{name}}." in part(to_bob, "plain")
    assert "Dear Bob &lt;b&gt;&amp;, your code is <b>{{name}}</b>." in part(to_bob, "html")

    async def both() -> list[str]:
        found = result(
            await tenant.client("events").get("/v1/messages", params={"template_id": template_id})
        )
        return sorted(m["rcpt"] for m in found["messages"]) if len(found["messages"]) == 2 else []

    assert await eventually(both, what="sending details by template") == sorted([ann, bob])


async def test_a_missing_value_answers_missing_macros_and_sends_nothing(
    tenant: Tenant, mx: SmtpSink
) -> None:
    template_id = await template(tenant)
    rcpt = f"missing.{tenant.name}@example.org"
    answer = await tenant.client("ingest").post(
        "/v1/messages",
        json={
            "from": tenant.sender,
            "to": [rcpt],
            "template_id": template_id,
            "variables": {"name": "Ann"},
        },
    )
    assert answer.status_code == 400, answer.text
    assert envelope(answer)["Code"] == "missing_macros"
    assert "code" in envelope(answer)["Description"]
    assert mx.for_rcpt(rcpt) == []


async def test_a_subject_value_cannot_add_a_header(tenant: Tenant, mx: SmtpSink) -> None:
    template_id = await template(tenant)
    rcpt = f"inject.{tenant.name}@example.org"
    answer = await tenant.client("ingest").post(
        "/v1/messages",
        json={
            "from": tenant.sender,
            "to": [rcpt],
            "template_id": template_id,
            "variables": {"name": "x\r\nBcc: victim@example.com", "code": "1"},
        },
    )
    assert answer.status_code == 400, answer.text
    assert envelope(answer)["Code"] == "invalid_value"
    assert mx.for_rcpt(rcpt) == []


async def test_template_rules_on_the_send_request(tenant: Tenant) -> None:
    trigger_id = await template(tenant)
    batch_id = await template(tenant, "batch")
    cases = [
        ({"template_id": batch_id, "variables": {"name": "a", "code": "1"}}, 403,
         "invalid_permission"),  # the account's API user is a trigger user
        ({"template_id": trigger_id, "subject": "also"}, 400, "invalid_value"),
        ({"template_id": "01JNOSUCHTEMPLATE000000000"}, 404, "not_found"),
        ({"subject": "s", "text": "t", "variables": {"a": "b"}}, 400, "invalid_value"),
    ]  # fmt: skip
    for fields, status, code in cases:
        answer = await tenant.client("ingest").post(
            "/v1/messages",
            json={"from": tenant.sender, "to": [f"rules.{tenant.name}@example.org"], **fields},
        )
        assert (answer.status_code, envelope(answer)["Code"]) == (status, code), fields


async def test_another_accounts_template_cannot_be_sent(
    tenant: Tenant, other_tenant: Tenant
) -> None:
    theirs = await template(other_tenant)
    answer = await tenant.client("ingest").post(
        "/v1/messages",
        json={
            "from": tenant.sender,
            "to": [f"x.{tenant.name}@example.org"],
            "template_id": theirs,
            "variables": {"name": "a", "code": "1"},
        },
    )
    assert answer.status_code == 404, answer.text
