"""The API served over HTTPS with the operator's certificate (POSTWIRE_HTTP_TLS_CERT/KEY):
what a vendor SDK pointed at ``https://mail.example.internal`` talks to when no gateway
terminates TLS in front of postwire."""

from __future__ import annotations

import asyncio
import base64
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from alibabacloud_dm20151123 import models as dm_models
from alibabacloud_dm20151123.client import Client as DmClient
from alibabacloud_tea_openapi.models import Config as AliyunConfig
from alibabacloud_tea_util.models import RuntimeOptions
from tencentcloud.common import credential
from tencentcloud.common.exception.tencent_cloud_sdk_exception import TencentCloudSDKException
from tencentcloud.common.profile.client_profile import ClientProfile
from tencentcloud.common.profile.http_profile import HttpProfile
from tencentcloud.ses.v20201002 import models as ses_models
from tencentcloud.ses.v20201002.ses_client import SesClient

from postwire_testkit.api import Tenant, envelope
from postwire_testkit.platform import PlatformProcess
from postwire_testkit.smtp import SmtpSink
from postwire_testkit.tls import CertificateAuthority
from postwire_testkit.wait import eventually


@pytest.fixture(scope="module")
def ca() -> CertificateAuthority:
    return CertificateAuthority()


@pytest.fixture(scope="module")
def https_platform(
    env: dict[str, str], log_dir: Path, tmp_path_factory: pytest.TempPathFactory,
    ca: CertificateAuthority,
) -> Iterator[PlatformProcess]:  # fmt: skip
    folder = tmp_path_factory.mktemp("https")
    issued = ca.issue("127.0.0.1", "localhost")
    (folder / "api.crt").write_bytes(issued.cert_pem)
    (folder / "api.key").write_bytes(issued.key_pem)
    tls = {
        "POSTWIRE_HTTP_TLS_CERT": str(folder / "api.crt"),
        "POSTWIRE_HTTP_TLS_KEY": str(folder / "api.key"),
        "POSTWIRE_PROCESSES": "1",
    }
    # Ingest alone: the session's platform delivers what it accepts.
    ca_file = ca.write(folder / "ca.pem")
    process = PlatformProcess(["ingest"], {**env, **tls}, log_dir, ca_file=ca_file)
    yield process.start()
    process.stop()


async def test_a_send_over_https_is_verified_against_the_operators_ca(
    https_platform: PlatformProcess, tenant: Tenant, mx: SmtpSink
) -> None:
    assert https_platform.url.startswith("https://")
    auth = httpx.BasicAuth(tenant.api_user, tenant.api_key)
    verify = https_platform.verify
    async with httpx.AsyncClient(base_url=https_platform.url, verify=verify, auth=auth) as client:
        answer = await client.post(
            "/v1/messages",
            json={"from": tenant.sender, "to": "tls@example.org", "subject": "TLS", "text": "x"},
        )
    assert answer.status_code == 202, answer.text
    env_id = envelope(answer)["Result"]["messages"][0]["env_id"]
    await tenant.wait_for_status(env_id, "delivered")
    await eventually(lambda: mx.for_rcpt("tls@example.org"), what="the mail sent over HTTPS")

    # A client that does not trust the operator's CA refuses the endpoint.
    async with httpx.AsyncClient(timeout=5) as untrusting:
        with pytest.raises(httpx.ConnectError):
            await untrusting.get(f"{https_platform.url}/healthz")


async def test_vendor_sdks_send_over_https_trusting_the_operators_ca(
    https_platform: PlatformProcess, tenant: Tenant, mx: SmtpSink
) -> None:
    """The SDKs as their users point them at a TLS endpoint: Tencent's HttpProfile with
    its certification file, Aliyun's runtime option ``ca``."""
    endpoint = https_platform.url.removeprefix("https://")
    ca_file = str(https_platform.ca_file)
    profile = ClientProfile(
        httpProfile=HttpProfile(endpoint=endpoint, protocol="https", certification=ca_file)
    )
    ses = SesClient(credential.Credential(tenant.api_user, tenant.api_key), "ap-hongkong", profile)
    request = ses_models.SendEmailRequest()
    request.FromEmailAddress = tenant.sender
    request.Destination = ["tencent-tls@example.org"]
    request.Subject = "TLS"
    request.Simple = ses_models.Simple()
    request.Simple.Text = base64.b64encode(b"over TLS").decode()
    sent = await asyncio.to_thread(ses.SendEmail, request)
    assert sent.MessageId

    config = AliyunConfig(
        access_key_id=tenant.api_user,
        access_key_secret=tenant.api_key,
        endpoint=endpoint,
        protocol="https",
    )
    single = dm_models.SingleSendMailRequest(
        account_name=tenant.sender, address_type=1, reply_to_address=False,
        to_address="aliyun-tls@example.org", subject="TLS", text_body="over TLS",
    )  # fmt: skip
    dm = DmClient(config)
    answer = await asyncio.to_thread(
        dm.single_send_mail_with_options, single, RuntimeOptions(ca=ca_file)
    )
    assert answer.body.env_id
    for rcpt in ("tencent-tls@example.org", "aliyun-tls@example.org"):
        await eventually(lambda rcpt=rcpt: mx.for_rcpt(rcpt), what=f"the mail to {rcpt}")

    # Without the operator's CA, the SDK refuses the endpoint.
    untrusting = ClientProfile(httpProfile=HttpProfile(endpoint=endpoint, protocol="https"))
    plain = SesClient(credential.Credential(tenant.api_user, tenant.api_key), "", untrusting)
    with pytest.raises(TencentCloudSDKException):
        await asyncio.to_thread(plain.SendEmail, request)


def test_half_a_tls_configuration_refuses_to_start(env: dict[str, str], tmp_path: Path) -> None:
    cert = tmp_path / "api.crt"
    cert.write_text("not read")
    inherited = {k: v for k, v in os.environ.items() if not k.startswith("POSTWIRE_")}
    done = subprocess.run(
        [sys.executable, "-m", "postwire", "run", "ingest"],
        env={**inherited, **env, "POSTWIRE_HTTP_TLS_CERT": str(cert), "POSTWIRE_HTTP_PORT": "0"},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        cwd=tmp_path,
    )
    assert done.returncode == 3
    assert "POSTWIRE_HTTP_TLS_KEY" in done.stderr
