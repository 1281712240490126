"""SendCloud's v2 mail API (``/apiv2/mail/...``) driven as SendCloud's docs show: a form
POST (urlencoded, or multipart with files) carrying apiUser/apiKey, and
``{"result", "statusCode", "message", "info"}`` back. SendCloud has no official Python
SDK (the ``sendcloud`` package on PyPI is another company's shipping API)."""

from __future__ import annotations

import hashlib
import hmac
import json
from email.message import EmailMessage
from typing import Any
from urllib.parse import parse_qs

import httpx

from postwire_testkit.api import Tenant
from postwire_testkit.http import HttpReceiver
from postwire_testkit.smtp import SmtpSink
from postwire_testkit.wait import eventually


def sendcloud(tenant: Tenant) -> httpx.AsyncClient:
    """A client pointed at postwire instead of https://api.sendcloud.net/apiv2."""
    return httpx.AsyncClient(base_url=f"{tenant.urls.ingest}/apiv2", timeout=30)


def credentials(tenant: Tenant, key: str | None = None) -> dict[str, str]:
    return {"apiUser": tenant.api_user, "apiKey": key or tenant.api_key}


def succeeded(response: httpx.Response) -> list[str]:
    body = response.json()
    assert response.status_code == 200, response.text
    assert body["result"] is True, body
    assert (body["statusCode"], body["message"]) == (200, "请求成功")
    ids: list[str] = body["info"]["emailIdList"]
    return ids


def refused(response: httpx.Response, code: int) -> str:
    body = response.json()
    assert response.status_code == 200, response.text  # SendCloud answers 200 either way
    assert (body["result"], body["statusCode"], body["info"]) == (False, code, {}), body
    return str(body["message"])


async def received(mx: SmtpSink, rcpt: str) -> EmailMessage:
    async def arrived() -> list[Any]:
        return mx.for_rcpt(rcpt)

    [copy] = await eventually(arrived, what=f"mail for {rcpt}")
    return copy.message


def body_text(message: EmailMessage, kind: str = "plain") -> str:
    part = message.get_body(preferencelist=(kind,))
    assert part is not None
    return str(part.get_content())


async def test_send_to_and_cc_with_an_attachment(tenant: Tenant, mx: SmtpSink) -> None:
    ann, bob = f"ann.{tenant.name}@example.org", f"bob.{tenant.name}@example.net"
    async with sendcloud(tenant) as client:
        answer = await client.post(
            "/mail/send",
            data={
                **credentials(tenant),
                "from": tenant.sender,
                "fromName": "Shop 商店",
                "to": ann,
                "cc": bob,
                "replyTo": f"help@{tenant.domain}",
                "subject": "Your invoice",
                "plain": "Attached.",
                "html": "<p>Attached.</p>",
                "labelName": "invoices",
                "headers": json.dumps({"X-Order": "42"}),
            },
            files={"attachments": ("invoice.pdf", b"%PDF-1.4 x", "application/pdf")},
        )
    ids = succeeded(answer)
    assert len(set(ids)) == 2  # one per recipient, cc included
    for rcpt in (ann, bob):
        mail = await received(mx, rcpt)
        assert mail["Subject"] == "Your invoice"
        assert mail["From"].addresses[0].display_name == "Shop 商店"
        assert mail["Reply-To"] == f"help@{tenant.domain}"
        assert mail["X-Order"] == "42"
        [attachment] = list(mail.iter_attachments())
        assert attachment.get_filename() == "invoice.pdf"
        assert attachment.get_content() == b"%PDF-1.4 x"
    statuses = [await tenant.wait_for_status(i, "delivered") for i in ids]
    assert statuses == ["delivered", "delivered"]


async def test_xsmtpapi_gives_each_recipient_its_own_values(tenant: Tenant, mx: SmtpSink) -> None:
    ann, joe = f"ann.{tenant.name}@example.org", f"joe.{tenant.name}@example.org"
    xsmtpapi = {"to": [ann, joe], "sub": {"%name%": ["Ann", "Joe"], "%money%": [288, 497]}}
    async with sendcloud(tenant) as client:
        answer = await client.post(
            "/mail/send",
            data={
                **credentials(tenant),
                "from": tenant.sender,
                "to": f"ignored.{tenant.name}@example.org",  # xsmtpapi's to wins
                "subject": "Bill for %name%",
                "plain": "Dear %name%, you owe %money% {{not_a_variable}}.",
                "xsmtpapi": json.dumps(xsmtpapi),
            },
        )
    assert len(succeeded(answer)) == 2
    for rcpt, name, money in ((ann, "Ann", "288"), (joe, "Joe", "497")):
        mail = await received(mx, rcpt)
        assert mail["Subject"] == f"Bill for {name}"
        assert body_text(mail).strip() == f"Dear {name}, you owe {money} {{{{not_a_variable}}}}."
    assert mx.for_rcpt(f"ignored.{tenant.name}@example.org") == []


async def test_sendtemplate_fills_the_template_per_recipient(tenant: Tenant, mx: SmtpSink) -> None:
    made = await tenant.client("ingest").post(
        "/v1/templates",
        json={
            "name": "ifaxin_bill",
            "type": "trigger",
            "subject": "Bill",
            "text": "Dear {{name}}, you owe %money%.",
        },
    )
    assert made.status_code == 201, made.text
    ann, joe = f"ann.{tenant.name}@example.org", f"joe.{tenant.name}@example.org"
    xsmtpapi = {"to": [ann, joe], "sub": {"%name%": ["Ann", "Joe"], "%money%": ["1", "2"]}}
    async with sendcloud(tenant) as client:
        answer = await client.post(
            "/mail/sendtemplate",
            data={
                **credentials(tenant),
                "from": tenant.sender,
                "templateInvokeName": "ifaxin_bill",
                "xsmtpapi": json.dumps(xsmtpapi),
            },
        )
        missing = await client.post(
            "/mail/sendtemplate",
            data={
                **credentials(tenant),
                "from": tenant.sender,
                "templateInvokeName": "no_such_template",
                "xsmtpapi": json.dumps(xsmtpapi),
            },
        )
    assert len(succeeded(answer)) == 2
    refused(missing, 40823)
    for rcpt, name, money in ((ann, "Ann", "1"), (joe, "Joe", "2")):
        mail = await received(mx, rcpt)
        assert mail["Subject"] == "Bill"
        assert body_text(mail).strip() == f"Dear {name}, you owe {money}."


async def test_sendcloud_webhook_receives_deliver_signed(
    tenant: Tenant, receiver: HttpReceiver, mx: SmtpSink
) -> None:
    path = f"/sendcloud-{tenant.name}"
    made = await tenant.client("notifier").post(
        "/v1/webhooks",
        json={"url": receiver.url(path), "events": ["delivered"], "format": "sendcloud"},
    )
    assert made.status_code == 201, made.text
    app_key = made.json()["Result"]["app_key"]
    ann = f"ann.{tenant.name}@example.org"
    async with sendcloud(tenant) as client:
        [email_id] = succeeded(
            await client.post(
                "/mail/send",
                data={
                    **credentials(tenant),
                    "from": tenant.sender,
                    "to": ann,
                    "subject": "Hi",
                    "plain": "Hi",
                    "labelName": "hello",
                },
            )
        )

    def delivers() -> list[dict[str, str]] | None:
        forms = [
            {k: v[0] for k, v in parse_qs(p.body.decode(), keep_blank_values=True).items()}
            for p in receiver.posts(path)
        ]
        found = [f for f in forms if f.get("event") == "deliver"]
        return found or None

    [push] = await eventually(delivers, within=30, what="a deliver push")
    headers = {k.lower(): v for k, v in receiver.posts(path)[-1].headers.items()}
    assert headers["content-type"] == "application/x-www-form-urlencoded"
    assert (push["emailId"], push["recipient"], push["labelId"]) == (email_id, ann, "hello")
    expected = hmac.new(
        app_key.encode(), f"{push['timestamp']}{push['token']}".encode(), hashlib.sha256
    ).hexdigest()
    assert hmac.compare_digest(expected, push["signature"])


async def test_wrong_api_key_is_refused_the_sendcloud_way(tenant: Tenant) -> None:
    async with sendcloud(tenant) as client:
        for route in ("/mail/send", "/mail/sendtemplate"):
            answer = await client.post(
                route,
                data={
                    **credentials(tenant, "wrong-key"),
                    "from": tenant.sender,
                    "to": f"ann.{tenant.name}@example.org",
                    "subject": "Hi",
                    "plain": "Hi",
                },
            )
            assert refused(answer, 40005) == "认证失败"


async def test_field_errors_answer_sendclouds_codes(tenant: Tenant) -> None:
    base = {**credentials(tenant), "from": tenant.sender, "to": "a@example.org"}
    cases: list[tuple[dict[str, str], int]] = [
        ({"from": "", "subject": "s", "plain": "p"}, 40801),
        ({"from": "stranger@example.org", "subject": "s", "plain": "p"}, 40802),
        ({"to": "", "subject": "s", "plain": "p"}, 40805),
        ({"to": "not an address", "subject": "s", "plain": "p"}, 40806),
        ({"plain": "p"}, 40808),
        ({"subject": "s"}, 40870),
        ({"subject": "s", "plain": "p", "cc": "bad@@x"}, 40853),
        ({"subject": "s", "plain": "p", "headers": "[1]"}, 40869),
        ({"subject": "s", "plain": "p", "headers": '{"From": "x@y.org"}'}, 40869),
        ({"subject": "s", "plain": "p", "xsmtpapi": "{"}, 40813),
        ({"subject": "s", "plain": "p", "xsmtpapi": '{"sub": {}}'}, 40815),
        ({"subject": "s", "plain": "p", "useAddressList": "true"}, 40820),
        ({"subject": "s", "plain": "p", "contentSummary": "x"}, 6001),
    ]
    async with sendcloud(tenant) as client:
        for fields, code in cases:
            refused(await client.post("/mail/send", data={**base, **fields}), code)
