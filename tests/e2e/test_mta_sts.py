"""MTA-STS through the whole platform: a platform of its own with ``POSTWIRE_MTA_STS``
on, the recipient domains' ``_mta-sts`` records in the loopback DNS, their policies on an
HTTPS server with certificates from a test CA (``POSTWIRE_DELIVERY_CA_FILE``), and MX
hosts with and without STARTTLS. ``enforce`` delivers only over verified TLS (even when
the account's TLS policy says ``none``) and fails mail it cannot send that way, naming
the policy; ``testing`` and domains without a policy deliver as usual."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest

from postwire_testkit.api import Tenant, Urls, envelope
from postwire_testkit.dns import LoopbackDns
from postwire_testkit.http import HttpPages
from postwire_testkit.infra import temp_database, temp_vhost, unique_name
from postwire_testkit.platform import PlatformProcess
from postwire_testkit.smtp import SmtpSink
from postwire_testkit.tls import CertificateAuthority

from .conftest import ADMIN_TOKEN, migrate, platform_env

WELL_KNOWN = "/.well-known/mta-sts.txt"
TLS_MX_IP = "127.0.0.5"
ENFORCED, PLAIN, ELSEWHERE, TESTING = (
    "sts-enforced.example",
    "sts-plain.example",
    "sts-elsewhere.example",
    "sts-testing.example",
)


def policy(mode: str, mx: str) -> str:
    return f"version: STSv1\r\nmode: {mode}\r\nmx: {mx}\r\nmax_age: 86400\r\n"


@pytest.fixture(scope="module")
def ca() -> CertificateAuthority:
    return CertificateAuthority()


@pytest.fixture(scope="module")
def pages(ca: CertificateAuthority, dns: LoopbackDns) -> Iterator[HttpPages]:
    served = {
        ENFORCED: policy("enforce", f"*.{ENFORCED}"),
        PLAIN: policy("enforce", f"mx.{PLAIN}"),
        ELSEWHERE: policy("enforce", f"mail.{ELSEWHERE}"),
        TESTING: policy("testing", f"mail.{TESTING}"),
    }
    names = [f"mta-sts.{domain}" for domain in served]
    server = HttpPages("127.0.0.1", tls=ca.issue(*names).server_context()).start()
    for domain, text in served.items():
        server.page(f"mta-sts.{domain}", WELL_KNOWN, text)
        dns.txt(f"_mta-sts.{domain}", "v=STSv1; id=1;")
        dns.a(f"mta-sts.{domain}", "127.0.0.1")
    yield server
    server.stop()


@pytest.fixture(scope="module")
def tls_mx(ca: CertificateAuthority, dns: LoopbackDns, mx: SmtpSink) -> Iterator[SmtpSink]:
    """The MX of ENFORCED and ELSEWHERE: STARTTLS with a certificate from the test CA, on
    another loopback address and the delivery port. PLAIN and TESTING use ``mx`` (no
    STARTTLS)."""
    cert = ca.issue(f"mx.{ENFORCED}", f"mx.{ELSEWHERE}")
    sink = SmtpSink(host=TLS_MX_IP, port=mx.port, tls=cert.server_context()).start()
    dns.mail_domain(ENFORCED, TLS_MX_IP)
    dns.mail_domain(ELSEWHERE, TLS_MX_IP)
    dns.mail_domain(PLAIN, "127.0.0.1")
    dns.mail_domain(TESTING, "127.0.0.1")
    yield sink
    sink.stop()


@pytest.fixture(scope="module")
def sts_vhost() -> Iterator[str]:
    with temp_vhost() as url:
        yield url


@pytest.fixture(scope="module")
async def sts_platform(
    sts_vhost: str,
    dns: LoopbackDns,
    mx: SmtpSink,
    tls_mx: SmtpSink,
    pages: HttpPages,
    ca: CertificateAuthority,
    log_dir: Path,
    tmp_path_factory: pytest.TempPathFactory,
) -> AsyncIterator[PlatformProcess]:
    ca_file = ca.write(tmp_path_factory.mktemp("mta-sts-ca") / "ca.pem")
    async with temp_database() as database_url:
        env = {
            **platform_env(database_url, sts_vhost, dns, mx),
            "POSTWIRE_MTA_STS": "true",
            "POSTWIRE_MTA_STS_PORT": str(pages.port),  # the policy server's free port
            "POSTWIRE_DELIVERY_CA_FILE": str(ca_file),
        }
        migrate(env)
        process = PlatformProcess(["all"], env, log_dir).start()
        try:
            yield process
        finally:
            process.stop()


@pytest.fixture
async def account(sts_platform: PlatformProcess) -> AsyncIterator[Tenant]:
    name = unique_name("sts")
    tenant = await Tenant.create(
        Urls.single(sts_platform.url), ADMIN_TOKEN, name, f"{name.replace('_', '-')}.example"
    )
    yield tenant
    await tenant.close()


async def send(tenant: Tenant, rcpts: list[str]) -> list[str]:
    answer = await tenant.send(rcpts)
    assert answer.status_code == 202, answer.text
    return [m["env_id"] for m in envelope(answer)["Result"]["messages"]]


async def last_event(tenant: Tenant, env_id: str) -> dict[str, Any]:
    answer = await tenant.message(env_id)
    assert answer.status_code == 200, answer.text
    event: dict[str, Any] = envelope(answer)["Result"]["events"][-1]
    return event


async def test_enforce_delivers_over_verified_tls_and_fails_what_it_cannot(
    account: Tenant, mx: SmtpSink, tls_mx: SmtpSink
) -> None:
    enforced, plain, elsewhere = (
        f"a.{account.name}@{domain}" for domain in (ENFORCED, PLAIN, ELSEWHERE)
    )
    enforced_id, plain_id, elsewhere_id = await send(account, [enforced, plain, elsewhere])

    assert await account.wait_for_status(enforced_id, "failed", "delivered") == "delivered"
    assert [r.tls for r in tls_mx.for_rcpt(enforced)] == [True]

    assert await account.wait_for_status(plain_id, "failed", "delivered") == "failed"
    failed = await last_event(account, plain_id)
    assert (failed["event"], failed["status"]) == ("failed", 4)
    assert failed["err_msg"] == (
        f"MTA-STS policy of {PLAIN} (enforce): mx.{PLAIN} does not offer STARTTLS"
    )
    assert mx.for_rcpt(plain) == []  # nothing in plain text

    assert await account.wait_for_status(elsewhere_id, "failed", "delivered") == "failed"
    refused = await last_event(account, elsewhere_id)
    assert refused["err_msg"] == (
        f"MTA-STS policy of {ELSEWHERE} (enforce): no MX host matches it (mx.{ELSEWHERE})"
    )
    assert tls_mx.for_rcpt(elsewhere) == []


async def test_an_accounts_none_does_not_undo_enforce(account: Tenant, tls_mx: SmtpSink) -> None:
    answer = await account.client("ingest").put(
        f"/v1/tls-policies/{ENFORCED}", json={"mode": "none"}
    )
    assert answer.status_code == 200, answer.text
    rcpt = f"none.{account.name}@{ENFORCED}"
    [env_id] = await send(account, [rcpt])
    assert await account.wait_for_status(env_id, "failed", "delivered") == "delivered"
    assert [r.tls for r in tls_mx.for_rcpt(rcpt)] == [True]


async def test_testing_and_domains_without_a_policy_deliver_as_usual(
    account: Tenant, mx: SmtpSink, pages: HttpPages
) -> None:
    testing, unlisted = f"t.{account.name}@{TESTING}", f"u.{account.name}@example.org"
    for env_id in await send(account, [testing, unlisted]):
        assert await account.wait_for_status(env_id, "failed", "delivered") == "delivered"
    assert [r.tls for r in mx.for_rcpt(testing)] == [False]
    assert [r.tls for r in mx.for_rcpt(unlisted)] == [False]
    assert pages.gets("mta-sts.example.org") == []
