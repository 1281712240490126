"""Aliyun DirectMail's own SDK (alibabacloud-dm20151123) against postwire: only the
endpoint and the AccessKey change (the API user's login and key)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from typing import Any, TypeVar

import httpx
import pytest
from alibabacloud_dm20151123 import models as dm
from alibabacloud_dm20151123.client import Client
from alibabacloud_tea_openapi.exceptions import ClientException
from alibabacloud_tea_openapi.utils_models import Config

from postwire_testkit.api import Tenant
from postwire_testkit.smtp import SmtpSink
from postwire_testkit.wait import eventually

T = TypeVar("T")


def client(
    tenant: Tenant, *, key_id: str | None = None, secret: str | None = None, v2: bool = False
) -> Client:
    endpoint = httpx.URL(tenant.urls.ingest)
    config = Config(
        access_key_id=key_id or tenant.api_user,
        access_key_secret=secret or tenant.api_key,
        endpoint=f"{endpoint.host}:{endpoint.port}",
        protocol="http",
        signature_algorithm="v2" if v2 else None,
    )
    return Client(config)


async def call(method: Callable[[Any], T], request: Any) -> T:
    """The SDK is blocking: run it off the loop the test's other peers share."""
    return await asyncio.to_thread(method, request)


async def refused(method: Callable[[Any], Any], request: Any) -> ClientException:
    with pytest.raises(ClientException) as raised:
        await call(method, request)
    return raised.value


async def received(mx: SmtpSink, rcpt: str) -> EmailMessage:
    async def arrived() -> list[Any]:
        return mx.for_rcpt(rcpt)

    [copy] = await eventually(arrived, what=f"mail for {rcpt}")
    return copy.message


def single(tenant: Tenant, to: str, **fields: Any) -> dm.SingleSendMailRequest:
    values: dict[str, Any] = {
        "account_name": tenant.sender,
        "address_type": 1,
        "reply_to_address": False,
        "to_address": to,
        "subject": "Spring sale",
        "html_body": "<p>Hello from the shop</p>",
        "text_body": "Hello from the shop",
        **fields,
    }
    return dm.SingleSendMailRequest(**values)


async def test_single_send_mail_is_delivered_and_read_back(tenant: Tenant, mx: SmtpSink) -> None:
    ann = f"ann.{tenant.name}@example.org"
    sdk = client(tenant)
    request = single(tenant, ann, from_alias="Shop", tag_name="spring", click_trace="0")
    sent = await call(sdk.single_send_mail, request)
    env_id = sent.body.env_id
    assert env_id
    assert sent.body.request_id

    mail = await received(mx, ann)
    assert mail["From"] == f"Shop <{tenant.sender}>"
    assert mail["Subject"] == "Spring sale"
    bodies = {p.get_content_type(): p.get_content() for p in mail.walk() if not p.is_multipart()}
    assert "Hello from the shop" in bodies["text/plain"]
    assert "<p>Hello from the shop</p>" in bodies["text/html"]
    # The same message as the native API's, with the tag as its label.
    assert await tenant.wait_for_status(env_id, "delivered") == "delivered"
    native = (await tenant.message(env_id)).json()["Result"]
    assert native["label"] == "spring"

    async def detail() -> list[Any]:
        found = await call(
            sdk.sender_statistics_detail_by_param,
            dm.SenderStatisticsDetailByParamRequest(to_address=ann, status=0, length=10),
        )
        return found.body.data.mail_detail

    [row] = await eventually(detail, what="Ann's message in the details")
    assert (row.to_address, row.account_name, row.status) == (ann, tenant.sender, 0)
    assert row.subject == "Spring sale"

    today = datetime.now(UTC).strftime("%Y-%m-%d")

    async def stats() -> list[Any]:
        found = await call(
            sdk.sender_statistics_by_tag_name_and_batch_id,
            dm.SenderStatisticsByTagNameAndBatchIDRequest(
                start_time=today, end_time=today, tag_name="spring"
            ),
        )
        rows = found.body.data.stat
        return rows if rows and rows[0].success_count == "1" else []

    [day] = await eventually(stats, what="the delivered message in the statistics")
    assert (day.create_time, day.request_count, day.succeeded_percent) == (today, "1", "100.00%")


async def test_the_older_rpc_signature_sends_too(tenant: Tenant, mx: SmtpSink) -> None:
    bob = f"bob.{tenant.name}@example.org"
    request = single(tenant, bob, reply_address=f"help@{tenant.domain}", reply_to_address=True)
    sent = await call(client(tenant, v2=True).single_send_mail, request)
    assert sent.body.env_id
    mail = await received(mx, bob)
    assert mail["Reply-To"] == f"help@{tenant.domain}"


async def test_batch_send_mail_renders_each_receiver(tenant: Tenant, mx: SmtpSink) -> None:
    template = {
        "name": "aliyun_spring",
        "type": "trigger",
        "subject": "Hi {{NickName}}",
        "text": "Dear {{NickName}}, spring is here.",
    }
    made = await tenant.client("ingest").post("/v1/templates", json=template)
    assert made.status_code == 201, made.text
    sdk = client(tenant)
    list_id = (
        await call(
            sdk.create_receiver,
            dm.CreateReceiverRequest(receivers_name="customers", receivers_alias="c@x.example"),
        )
    ).body.receiver_id
    ann, bob = (f"{n}.{tenant.name}@example.net" for n in ("ann", "bob"))
    detail = f'[{{"e":"{ann}","n":"Ann"}},{{"e":"{bob}","n":"Bob"}},{{"e":"not-an-address"}}]'
    saved = await call(
        sdk.save_receiver_detail, dm.SaveReceiverDetailRequest(receiver_id=list_id, detail=detail)
    )
    assert (saved.body.success_count, saved.body.error_count) == (2, 1)
    listed = await call(sdk.query_receiver_by_param, dm.QueryReceiverByParamRequest())
    [shown] = listed.body.data.receiver
    assert (shown.receivers_name, shown.count) == ("customers", "2")

    sent = await call(
        sdk.batch_send_mail,
        dm.BatchSendMailRequest(
            account_name=tenant.sender,
            address_type=1,
            template_name="aliyun_spring",
            receivers_name="customers",
            tag_name="batch",
        ),
    )
    assert sent.body.env_id
    assert (await received(mx, ann))["Subject"] == "Hi Ann"
    assert (await received(mx, bob))["Subject"] == "Hi Bob"

    await call(sdk.delete_receiver, dm.DeleteReceiverRequest(receiver_id=list_id))
    gone = await refused(
        sdk.batch_send_mail,
        dm.BatchSendMailRequest(
            account_name=tenant.sender,
            address_type=1,
            template_name="aliyun_spring",
            receivers_name="customers",
        ),
    )
    assert gone.code == "InvalidReceiver.NotFound"


async def test_query_mail_address_lists_the_senders(tenant: Tenant) -> None:
    found = await call(
        client(tenant).query_mail_address_by_param, dm.QueryMailAddressByParamRequest()
    )
    assert found.body.total_count == 1
    [address] = found.body.data.mail_address
    assert (address.account_name, address.account_status) == (tenant.sender, "0")


async def test_what_postwire_refuses_in_aliyuns_terms(tenant: Tenant) -> None:
    ann = f"ann.{tenant.name}@example.org"
    wrong_secret = await refused(
        client(tenant, secret="x" * 30).single_send_mail, single(tenant, ann)
    )
    assert wrong_secret.code == "SignatureDoesNotMatch"
    unknown = client(tenant, key_id=f"{tenant.name}.nobody")
    assert (await refused(unknown.single_send_mail, single(tenant, ann))).code == (
        "InvalidAccessKeyId.NotFound"
    )
    sdk = client(tenant)
    unsupported = await refused(sdk.get_ip_protection, dm.GetIpProtectionRequest())
    assert (unsupported.code, unsupported.status_code) == ("InvalidAction.NotFound", 404)
    random_sender = await refused(sdk.single_send_mail, single(tenant, ann, address_type=0))
    assert random_sender.code == "InvalidParameter"
    stranger = await refused(
        sdk.single_send_mail, single(tenant, ann, account_name=f"who@{tenant.domain}")
    )
    assert stranger.code == "InvalidMailAddress.NotFound"
    bcc = await refused(sdk.single_send_mail, single(tenant, ann, bcc_address="b@example.org"))
    assert bcc.code == "InvalidParameter"
    assert "BccAddress" in bcc.message
    no_body = await refused(
        sdk.single_send_mail, single(tenant, ann, html_body=None, text_body=None)
    )
    assert no_body.code == "InvalidBody"
    bad_to = await refused(sdk.single_send_mail, single(tenant, "not an address"))
    assert bad_to.code == "InvalidToAddress"
    old = (datetime.now(UTC) - timedelta(days=40)).strftime("%Y-%m-%d")
    span = await refused(
        sdk.sender_statistics_by_tag_name_and_batch_id,
        dm.SenderStatisticsByTagNameAndBatchIDRequest(
            start_time=old, end_time=datetime.now(UTC).strftime("%Y-%m-%d")
        ),
    )
    assert span.code == "InvalidParameter"
