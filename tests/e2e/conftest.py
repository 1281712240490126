"""The platform as deployed, on this machine's real RabbitMQ and PostgreSQL.

Each test session gets its own database and RabbitMQ vhost, a DNS server on loopback
that maps the test domains' MX hosts to an aiosmtpd server, and an HTTP receiver for
webhooks; the platform itself runs as ``postwire run all`` child process.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import asyncpg
import pytest

from postwire_testkit.api import Tenant, Urls
from postwire_testkit.dns import LoopbackDns
from postwire_testkit.http import HttpReceiver
from postwire_testkit.infra import temp_database, temp_vhost, unique_name
from postwire_testkit.platform import PlatformProcess
from postwire_testkit.smtp import SmtpSink, free_port

ADMIN_TOKEN = "e2e-admin-token-" + "x" * 16
MAIL_DOMAINS = ("example.org", "example.net", "example.com")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "tests/e2e/" in str(item.path):
            item.add_marker(pytest.mark.e2e)
    # Tests that stop PostgreSQL run last: connections other tests hold would break.
    items.sort(key=lambda item: item.get_closest_marker("outage") is not None)


@pytest.fixture(scope="session")
def log_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("postwire-logs")


@pytest.fixture(scope="session")
def dns() -> Iterator[LoopbackDns]:
    server = LoopbackDns().start()
    for domain in MAIL_DOMAINS:
        server.mail_domain(domain)
    server.null_mx("nomail.example")
    server.a("noservice.example", "192.0.2.1")  # TEST-NET: no MX, A fallback, unreachable
    yield server
    server.stop()


@pytest.fixture(scope="session")
def mx() -> Iterator[SmtpSink]:
    sink = SmtpSink().start()
    yield sink
    sink.stop()


@pytest.fixture(scope="session")
def receiver() -> Iterator[HttpReceiver]:
    server = HttpReceiver().start()
    yield server
    server.stop()


def platform_env(
    database_url: str, broker_url: str, dns: LoopbackDns, mx: SmtpSink
) -> dict[str, str]:
    return {
        "POSTWIRE_DATABASE_URL": database_url,
        "POSTWIRE_BROKER_URL": broker_url,
        "POSTWIRE_ADMIN_TOKEN": ADMIN_TOKEN,
        "POSTWIRE_DNS_NAMESERVERS": dns.nameserver,
        "POSTWIRE_DELIVERY_PORT": str(mx.port),
        "POSTWIRE_DELIVERY_RELAY": "",
        "POSTWIRE_ALLOW_PRIVATE_TARGETS": "true",  # MX hosts on loopback
        "POSTWIRE_ALLOW_PRIVATE_WEBHOOKS": "true",  # the webhook receiver too
        "POSTWIRE_HELO_NAME": "postwire.test",
        "POSTWIRE_DOMAIN_RECHECK_INTERVAL": "2s",  # only domains not verified by override
        "POSTWIRE_SOFT_BOUNCE_SCHEDULE": "1s,1s,1s",
        "POSTWIRE_WEBHOOK_RETRY_SCHEDULE": "1s,2s",
        "POSTWIRE_SUBSCRIPTION_RETRY_SCALE": "0.01",
        "POSTWIRE_WEBHOOK_TIMEOUT": "2s",
        "POSTWIRE_DELIVERY_ATTEMPT_TIMEOUT": "10s",
        "POSTWIRE_DELIVERY_LEASE": "3s",
        "POSTWIRE_REDRIVE_INTERVAL": "1s",
        "POSTWIRE_SMTP_PORT": str(free_port()),
        "POSTWIRE_SMTPS_PORT": str(free_port()),
        "POSTWIRE_SMTP_TIMEOUT": "3s",  # idle sessions closed soon (slowloris test)
        "POSTWIRE_INBOUND_PORT": "0",
        # Tests open and click right after delivery, as no person does (machines.py).
        "POSTWIRE_TRACKING_SCANNER_WINDOW": "0",
        "POSTWIRE_LOG_FORMAT": "json",
    }


def migrate(env: dict[str, str]) -> None:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("POSTWIRE_")}
    done = subprocess.run(
        [sys.executable, "-m", "postwire", "migrate"],
        env={**clean, **env},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr


@pytest.fixture(scope="session")
async def database_url() -> AsyncIterator[str]:
    async with temp_database() as url:
        yield url


@pytest.fixture(scope="session")
def broker_url() -> Iterator[str]:
    with temp_vhost() as url:
        yield url


@pytest.fixture(scope="session")
def env(database_url: str, broker_url: str, dns: LoopbackDns, mx: SmtpSink) -> dict[str, str]:
    values = platform_env(database_url, broker_url, dns, mx)
    migrate(values)
    return values


@pytest.fixture(scope="session")
def platform(env: dict[str, str], log_dir: Path) -> Iterator[PlatformProcess]:
    process = PlatformProcess(["all"], env, log_dir).start()
    yield process
    code = process.stop()
    assert code == 0, f"postwire did not shut down cleanly ({code}):\n{process.log_tail()}"


@pytest.fixture(scope="session")
async def db(database_url: str) -> AsyncIterator[asyncpg.Connection]:
    """A connection for checking what the services stored."""
    conn = await asyncpg.connect(database_url)
    yield conn
    await conn.close()


async def make_tenant(urls: Urls) -> AsyncIterator[Tenant]:
    name = unique_name("acct")
    tenant = await Tenant.create(urls, ADMIN_TOKEN, name, f"{name.replace('_', '-')}.example")
    yield tenant
    await tenant.close()


@pytest.fixture
async def tenant(platform: PlatformProcess) -> AsyncIterator[Tenant]:
    async for made in make_tenant(Urls.single(platform.url)):
        yield made


@pytest.fixture
async def other_tenant(platform: PlatformProcess) -> AsyncIterator[Tenant]:
    async for made in make_tenant(Urls.single(platform.url)):
        yield made
