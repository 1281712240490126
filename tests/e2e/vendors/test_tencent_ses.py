"""Tencent Cloud SES's own SDK (tencentcloud-sdk-python-ses, 2020-10-02) against postwire:
only the endpoint (HttpProfile) and the SecretId/SecretKey (the API user's login and key)
change."""

from __future__ import annotations

import asyncio
import base64
import json
from datetime import UTC, datetime
from email.message import EmailMessage
from typing import Any

import httpx
import pytest
from tencentcloud.common import credential
from tencentcloud.common.exception.tencent_cloud_sdk_exception import (
    TencentCloudSDKException,
)
from tencentcloud.common.profile.client_profile import ClientProfile
from tencentcloud.common.profile.http_profile import HttpProfile
from tencentcloud.ses.v20201002 import models, ses_client

from postwire_testkit.api import Tenant
from postwire_testkit.platform import PlatformProcess
from postwire_testkit.smtp import SmtpSink
from postwire_testkit.wait import eventually

from ..conftest import ADMIN_TOKEN

ADMIN = {"Authorization": f"Bearer {ADMIN_TOKEN}"}


def client(tenant: Tenant, *, secret_id: str | None = None, secret_key: str | None = None) -> Any:
    """The SDK as a Tencent user configures it, pointed at postwire."""
    url = httpx.URL(tenant.urls.ingest)
    profile = ClientProfile(
        httpProfile=HttpProfile(endpoint=f"{url.host}:{url.port}", protocol="http")
    )
    cred = credential.Credential(secret_id or tenant.api_user, secret_key or tenant.api_key)
    return ses_client.SesClient(cred, "ap-guangzhou", profile)


async def call(sdk: Any, action: str, params: dict[str, Any]) -> dict[str, Any]:
    """One action through the SDK's typed method (it blocks: off the loop the sink shares)."""
    request = getattr(models, f"{action}Request")()
    request.from_json_string(json.dumps(params))
    response = await asyncio.to_thread(getattr(sdk, action), request)
    answer: dict[str, Any] = json.loads(response.to_json_string())
    assert answer["RequestId"]
    return answer


async def refused(sdk: Any, action: str, params: dict[str, Any]) -> str:
    with pytest.raises(TencentCloudSDKException) as raised:
        await call(sdk, action, params)
    assert raised.value.get_request_id()
    return str(raised.value.get_code())


def b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


def today() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%d")


async def received(mx: SmtpSink, rcpt: str) -> EmailMessage:
    async def arrived() -> list[Any]:
        return mx.for_rcpt(rcpt)

    [copy] = await eventually(arrived, what=f"mail for {rcpt}")
    return copy.message


async def test_a_simple_email_is_delivered_and_its_status_read_back(
    tenant: Tenant, mx: SmtpSink
) -> None:
    ann, bob = f"ann.{tenant.name}@example.org", f"bob.{tenant.name}@example.net"
    sdk = client(tenant)
    sent = await call(
        sdk,
        "SendEmail",
        {
            "FromEmailAddress": f"Shop <{tenant.sender}>",
            "Destination": [ann, bob],
            "Subject": "Spring sale",
            "ReplyToAddresses": f"help@{tenant.domain}",
            "Simple": {"Html": b64("<p>Zoë's shop</p>"), "Text": b64("Zoë's shop")},
            "Attachments": [{"FileName": "a.pdf", "Content": b64("%PDF-1.4 x")}],
            "Unsubscribe": "0",
            "TriggerType": 1,
        },
    )
    message_id = sent["MessageId"]
    mail = await received(mx, ann)
    assert mail["Subject"] == "Spring sale"
    assert mail["From"] == f"Shop <{tenant.sender}>"
    assert mail["Reply-To"] == f"help@{tenant.domain}"
    assert "Zoë's shop" in mail.get_body(("plain",)).get_content()  # type: ignore[union-attr]
    [part] = list(mail.iter_attachments())
    assert (part.get_filename(), part.get_content()) == ("a.pdf", b"%PDF-1.4 x")
    await received(mx, bob)

    # The MessageId SendEmail answered finds both recipients, once delivered.
    async def delivered() -> list[dict[str, Any]] | None:
        answer = await call(
            sdk,
            "GetSendEmailStatus",
            {"RequestDate": today(), "Offset": 0, "Limit": 10, "MessageId": message_id},
        )
        rows: list[dict[str, Any]] = answer["EmailStatusList"]
        return rows if len(rows) == 2 and all(r["DeliverStatus"] == 1 for r in rows) else None

    rows = await eventually(delivered, what="both delivered")
    assert {r["ToEmailAddress"] for r in rows} == {ann, bob}
    for row in rows:
        assert row["MessageId"] == message_id
        assert row["FromEmailAddress"] == tenant.sender
        assert row["SendStatus"] == 0
        assert row["DeliverTime"] >= row["RequestTime"] > 0
        assert row["UserOpened"] is False
        assert row["UserComplainted"] is False
    # The same messages as the native API's: the MessageId is the first one's env_id.
    assert await tenant.status(message_id) == "delivered"
    # By day and recipient: each recipient's own message.
    answer = await call(
        sdk,
        "GetSendEmailStatus",
        {"RequestDate": today(), "Offset": 0, "Limit": 100, "ToEmailAddress": bob},
    )
    [row] = answer["EmailStatusList"]
    assert (row["ToEmailAddress"], row["DeliverStatus"]) == (bob, 1)
    assert row["MessageId"] != message_id  # bob's own env_id
    assert await tenant.status(row["MessageId"]) == "delivered"


async def test_templates_are_created_listed_sent_with_their_values_and_deleted(
    tenant: Tenant, mx: SmtpSink
) -> None:
    ann = f"ann.{tenant.name}@example.org"
    sdk = client(tenant)
    content = {"Html": b64("<p>Hello {{name}}, code {{code}}</p>"), "Text": b64("Hello {{name}}")}
    made = await call(
        sdk, "CreateEmailTemplate", {"TemplateName": "welcome", "TemplateContent": content}
    )
    number = made["TemplateID"]
    assert isinstance(number, int)

    listed = await call(sdk, "ListEmailTemplates", {"Limit": 100, "Offset": 0})
    assert listed["TotalCount"] >= 1
    [mine] = [t for t in listed["TemplatesMetadata"] if t["TemplateID"] == number]
    assert (mine["TemplateName"], mine["TemplateStatus"]) == ("welcome", 0)
    assert mine["CreatedTimestamp"] > 0
    shown = await call(sdk, "GetEmailTemplate", {"TemplateID": number})
    assert shown["TemplateContent"] == content
    assert (shown["TemplateName"], shown["TemplateStatus"]) == ("welcome", 0)

    await call(
        sdk,
        "SendEmail",
        {
            "FromEmailAddress": tenant.sender,
            "Destination": [ann],
            "Subject": "Welcome {{name}}",
            "Template": {
                "TemplateID": number,
                "TemplateData": json.dumps({"name": "Ann <3", "code": 42}),
            },
        },
    )
    mail = await received(mx, ann)
    assert mail["Subject"] == "Welcome Ann <3"
    html = mail.get_body(("html",)).get_content()  # type: ignore[union-attr]
    assert "Hello Ann &lt;3, code 42" in html  # values are text, escaped in HTML

    missing = {"TemplateID": number, "TemplateData": json.dumps({"name": "Ann"})}
    send = {"FromEmailAddress": tenant.sender, "Destination": [ann], "Subject": "x"}
    assert (
        await refused(sdk, "SendEmail", {**send, "Template": missing})
        == "InvalidParameterValue.TemplateNotMatchData"
    )
    assert (
        await refused(sdk, "SendEmail", {**send, "Template": {**missing, "TemplateData": "{"}})
        == "InvalidParameterValue.TemplateDataError"
    )

    await call(sdk, "DeleteEmailTemplate", {"TemplateID": number})
    gone = {"TemplateID": number, "TemplateData": "{}"}
    assert await refused(sdk, "SendEmail", {**send, "Template": gone}) == (
        "FailedOperation.InvalidTemplateID"
    )
    assert await refused(sdk, "DeleteEmailTemplate", {"TemplateID": number}) == (
        "InvalidParameterValue.TemplateNotExist"
    )


async def test_another_accounts_template_number_is_not_found(
    tenant: Tenant, other_tenant: Tenant
) -> None:
    content = {"Text": b64("Hello")}
    made = await call(
        client(other_tenant),
        "CreateEmailTemplate",
        {"TemplateName": "theirs", "TemplateContent": content},
    )
    assert await refused(
        client(tenant), "GetEmailTemplate", {"TemplateID": made["TemplateID"]}
    ) == ("InvalidParameterValue.TemplateNotExist")


async def test_the_statistics_report_counts_requests_and_deliveries(
    tenant: Tenant, mx: SmtpSink
) -> None:
    ann = f"ann.{tenant.name}@example.org"
    sdk = client(tenant)
    simple = {"Text": b64("Hi")}
    send = {
        "FromEmailAddress": tenant.sender,
        "Destination": [ann],
        "Subject": "Hi",
        "Simple": simple,
    }
    await call(sdk, "SendEmail", send)
    await received(mx, ann)
    dates = {"StartDate": today(), "EndDate": today()}

    async def counted() -> dict[str, Any] | None:
        answer = await call(sdk, "GetStatisticsReport", dates)
        [daily] = answer["DailyVolumes"]
        return answer if daily["DeliveredCount"] == 1 else None

    answer = await eventually(counted, what="the delivery counted")
    [daily] = answer["DailyVolumes"]
    assert daily == {
        "SendDate": today(),
        "RequestCount": 1,
        "AcceptedCount": 1,
        "DeliveredCount": 1,
        "OpenedCount": 0,
        "ClickedCount": 0,
        "BounceCount": 0,
        "UnsubscribeCount": 0,
    }
    assert answer["OverallVolume"]["RequestCount"] == 1
    by_domain = await call(sdk, "GetStatisticsReport", {**dates, "Domain": "elsewhere.example"})
    assert by_domain["DailyVolumes"][0]["RequestCount"] == 0
    assert (
        await refused(sdk, "GetStatisticsReport", {**dates, "ReceivingMailboxType": "gmail.com"})
        == "UnsupportedOperation"
    )
    assert (
        await refused(sdk, "GetStatisticsReport", {"StartDate": today(), "EndDate": "2001-01-01"})
        == "InvalidParameterValue.WrongDate"
    )


async def test_wrong_credentials_are_refused_with_tencents_codes(tenant: Tenant) -> None:
    params = {"Limit": 10, "Offset": 0}
    wrong_key = client(tenant, secret_key=tenant.api_key + "x")
    assert await refused(wrong_key, "ListEmailTemplates", params) == "AuthFailure.SignatureFailure"
    unknown = client(tenant, secret_id=f"{tenant.name}.nobody01")
    assert await refused(unknown, "ListEmailTemplates", params) == "AuthFailure.SecretIdNotFound"
    status = {"RequestDate": today(), "Limit": 10}
    assert await refused(wrong_key, "GetSendEmailStatus", status) == "AuthFailure.SignatureFailure"


async def test_actions_and_fields_postwire_lacks_answer_their_error(tenant: Tenant) -> None:
    sdk = client(tenant)
    assert await refused(
        sdk,
        "ListBlackEmailAddress",
        {"StartDate": today(), "EndDate": today(), "Limit": 10, "Offset": 0},
    ) == ("UnsupportedOperation")
    with pytest.raises(TencentCloudSDKException) as raised:
        await asyncio.to_thread(sdk.call_json, "NoSuchAction", {})
    assert raised.value.get_code() == "InvalidAction"

    ann = f"ann.{tenant.name}@example.org"
    send = {"FromEmailAddress": tenant.sender, "Destination": [ann], "Subject": "Hi"}
    simple = {**send, "Simple": {"Text": b64("Hi")}}
    many = [f"u{n}@example.org" for n in range(51)]
    bad_file = [{"FileName": "a.txt", "Content": "%%%"}]
    cases = [
        ({**simple, "Cc": [f"cc@{tenant.domain}"]}, "UnsupportedOperation"),
        ({**simple, "HeaderFrom": tenant.sender}, "UnsupportedOperation"),
        ({**simple, "Destination": many}, "FailedOperation.TooManyRecipients"),
        ({**simple, "Destination": []}, "InvalidParameterValue.EmailAddressIsNULL"),
        (
            {**simple, "FromEmailAddress": f"x@{tenant.domain}"},
            "InvalidParameterValue.NoSuchSender",
        ),
        (send, "FailedOperation.MissingEmailContent"),
        ({**send, "Simple": {"Text": "not base64!"}}, "InvalidParameterValue.EmailContentIsWrong"),
        (
            {**simple, "Destination": ["not an address"]},
            "InvalidParameterValue.IllegalEmailAddress",
        ),
        ({**simple, "Attachments": bad_file}, "InvalidParameterValue.AttachContentIsWrong"),
    ]
    for params, code in cases:
        assert await refused(sdk, "SendEmail", params) == code, params
    # A parameter SES does not have (the typed models drop them; the generic call sends it).
    with pytest.raises(TencentCloudSDKException) as raised:
        await asyncio.to_thread(sdk.call_json, "SendEmail", {**simple, "Surprise": 1})
    assert raised.value.get_code() == "UnknownParameter"


async def test_a_template_waiting_for_approval_is_listed_so_and_not_sent(
    tenant: Tenant, platform: PlatformProcess
) -> None:
    sdk = client(tenant)
    async with httpx.AsyncClient(base_url=platform.url, headers=ADMIN, timeout=30) as operator:
        marked = await operator.put(
            f"/v1/admin/accounts/{tenant.name}/sensitive", json={"sensitive": True}
        )
        assert marked.status_code == 200, marked.text
        made = await call(
            sdk,
            "CreateEmailTemplate",
            {"TemplateName": "promo", "TemplateContent": {"Text": b64("Hi")}},
        )
        number = made["TemplateID"]
        shown = await call(sdk, "GetEmailTemplate", {"TemplateID": number})
        assert shown["TemplateStatus"] == 1
        send = {
            "FromEmailAddress": tenant.sender,
            "Destination": [f"ann.{tenant.name}@example.org"],
            "Subject": "Hi",
            "Template": {"TemplateID": number, "TemplateData": "{}"},
        }
        assert await refused(sdk, "SendEmail", send) == "OperationDenied.TemplateStatusError"

        found = await tenant.client("ingest").get("/v1/templates", params={"name": "promo"})
        [template] = found.json()["Result"]["templates"]
        template_id = template["id"]
        rejected = await operator.post(
            f"/v1/admin/templates/{template_id}/reject", json={"reason": "no promos"}
        )
        assert rejected.status_code == 200, rejected.text
        listed = await call(sdk, "ListEmailTemplates", {"Limit": 100, "Offset": 0})
        [mine] = [t for t in listed["TemplatesMetadata"] if t["TemplateID"] == number]
        assert (mine["TemplateStatus"], mine["ReviewReason"]) == (2, "no promos")
