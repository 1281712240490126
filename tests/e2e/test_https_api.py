"""The API served over HTTPS with the operator's certificate (POSTWIRE_HTTP_TLS_CERT/KEY):
what a vendor SDK pointed at ``https://mail.example.internal`` talks to when no gateway
terminates TLS in front of postwire."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

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
