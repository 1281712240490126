"""Bounces and complaints that arrive after delivery, over SMTP at delivery's inbound MX.

Mail is sent with a VERP return path; the reports are real MTAs' formats (the parser's
samples, with the message's identity put in) handed to the inbound port by an SMTP
client, as the reporting MTA would. A report turns the delivered message into ``failed``
(or records a ``spam_report``) and suppresses the address; reports about nothing of ours
change nothing; the inbound MX relays nothing.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiosmtplib
import pytest

from postwire_testkit.api import Tenant, Urls, envelope
from postwire_testkit.dns import LoopbackDns
from postwire_testkit.infra import temp_database, temp_vhost, unique_name
from postwire_testkit.platform import PlatformProcess
from postwire_testkit.smtp import SmtpSink, free_port
from postwire_testkit.wait import eventually

from .conftest import ADMIN_TOKEN, migrate, platform_env

BOUNCE_DOMAIN = "bounces.postwire.test"
SAMPLES = Path(__file__).parents[2] / "services/delivery/tests/unit/bounce_samples"
SAMPLE_BOUNCE_DOMAIN = "bounces.postwire.example"
SAMPLE_SENDER_DOMAIN = "shop.example"


@dataclass
class Inbound:
    platform: PlatformProcess
    port: int


@pytest.fixture(scope="module")
def bounce_vhost() -> Iterator[str]:
    with temp_vhost() as url:
        yield url


@pytest.fixture(scope="module")
async def inbound(
    bounce_vhost: str, dns: LoopbackDns, mx: SmtpSink, log_dir: Path
) -> AsyncIterator[Inbound]:
    port = free_port()
    async with temp_database() as database_url:
        env = {
            **platform_env(database_url, bounce_vhost, dns, mx),
            "POSTWIRE_BOUNCE_DOMAIN": BOUNCE_DOMAIN,
            "POSTWIRE_INBOUND_PORT": str(port),
        }
        migrate(env)
        process = PlatformProcess(["all"], env, log_dir).start()
        try:
            yield Inbound(process, port)
        finally:
            process.stop()


@pytest.fixture
async def account(inbound: Inbound) -> AsyncIterator[Tenant]:
    name = unique_name("bnc")
    tenant = await Tenant.create(
        Urls.single(inbound.platform.url), ADMIN_TOKEN, name, f"{name.replace('_', '-')}.example"
    )
    yield tenant
    await tenant.close()


async def delivered(tenant: Tenant, mx: SmtpSink, local: str) -> tuple[str, str]:
    """Send one message and wait until it is delivered; (env_id, rcpt)."""
    rcpt = f"{local}.{tenant.name}@example.org"
    answer = await tenant.send([rcpt])
    assert answer.status_code == 202, answer.text
    env_id = envelope(answer)["Result"]["messages"][0]["env_id"]
    assert await tenant.wait_for_status(env_id, "delivered") == "delivered"
    [copy] = mx.for_rcpt(rcpt)
    assert copy.mail_from == f"bounce+{env_id}@{BOUNCE_DOMAIN}"  # VERP
    return env_id, rcpt


def report_from(sample: str, env_id: str, rcpt: str, tenant: Tenant) -> bytes:
    """A parser sample about one of our messages: its env_id, recipient and domains."""
    raw = (SAMPLES / sample).read_bytes()
    for old, new in [
        (SAMPLE_ENV_IDS[sample], env_id),
        (SAMPLE_RCPTS[sample], rcpt),
        (SAMPLE_BOUNCE_DOMAIN, BOUNCE_DOMAIN),
        (SAMPLE_SENDER_DOMAIN, tenant.domain),
    ]:
        raw = raw.replace(old.encode(), new.encode())
    return raw


SAMPLE_ENV_IDS = {
    "dsn_hard_511.eml": "01J9ZQ4M3X8T7K2B6N5R0VWHCD",
    "exim.eml": "01J9ZQ8E0000000000000000EX",
    "qmail.eml": "01J9ZQ9Q0000000000000000QM",
    "dsn_message_id_only.eml": "01J9ZQ7M0000000000000000ID",
    "gmail.eml": "01J9ZQCG0000000000000000GM",
    "arf_abuse.eml": "01J9ZQEA0000000000000000AR",
    "vacation.eml": "01J9ZQF20000000000000000VC",
}
SAMPLE_RCPTS = {
    "dsn_hard_511.eml": "ann@example.org",
    "exim.eml": "erin@example.co.uk",
    "qmail.eml": "gina@example.com",
    "dsn_message_id_only.eml": "dave@corp.example.com",
    "gmail.eml": "mia@gmail.example",
    "arf_abuse.eml": "oscar@isp.example",
    "vacation.eml": "nobody@nowhere.example",
}
# Where each reporting MTA sends its report: the VERP address, or a plain one.
VERP, PLAIN, POSTMASTER, FBL = "verp", "bounces", "postmaster", "fbl"


def address(kind: str, env_id: str) -> str:
    return f"bounce+{env_id}@{BOUNCE_DOMAIN}" if kind == VERP else f"{kind}@{BOUNCE_DOMAIN}"


async def hand_over(port: int, rcpt_to: str, raw: bytes) -> tuple[int, str]:
    """Deliver ``raw`` to the inbound MX as an MTA would (null return path)."""
    client = aiosmtplib.SMTP(hostname="127.0.0.1", port=port, timeout=10, start_tls=False)
    await client.connect()
    try:
        await client.mail("")
        try:
            await client.rcpt(rcpt_to)
        except aiosmtplib.SMTPRecipientRefused as refused:
            return refused.code, refused.message
        reply = await client.data(raw)
        return reply.code, reply.message
    finally:
        await client.quit()


async def shown(tenant: Tenant, env_id: str) -> dict[str, Any]:
    answer = await tenant.message(env_id)
    assert answer.status_code == 200, answer.text
    return dict(envelope(answer)["Result"])


async def suppressions(tenant: Tenant, reason: str) -> list[dict[str, Any]]:
    answer = await tenant.client("events").get("/v1/suppressions", params={"reason": reason})
    assert answer.status_code == 200, answer.text
    return list(envelope(answer)["Result"]["suppressions"])


@pytest.mark.parametrize(
    ("sample", "to", "status", "words"),
    [
        pytest.param("dsn_hard_511.eml", VERP, 2, "5.1.1", id="postfix-dsn-verp"),
        pytest.param("exim.eml", PLAIN, 2, "User unknown", id="exim-env-id-header"),
        pytest.param("qmail.eml", VERP, 2, "no mailbox here", id="qmail-two-recipients"),
        pytest.param("dsn_message_id_only.eml", POSTMASTER, 4, "5.2.2", id="dsn-message-id"),
        pytest.param("gmail.eml", VERP, 2, "5.1.1", id="gmail"),
    ],
)
async def test_a_bounce_after_delivery_fails_the_message(
    inbound: Inbound, account: Tenant, mx: SmtpSink, sample: str, to: str, status: int, words: str
) -> None:
    env_id, rcpt = await delivered(account, mx, "bounced")
    raw = report_from(sample, env_id, rcpt, account)
    assert await hand_over(inbound.port, address(to, env_id), raw) == (
        250,
        "2.0.0 OK: report received",
    )
    assert await account.wait_for_status(env_id, "failed") == "failed"
    message = await shown(account, env_id)
    assert [e["event"] for e in message["events"]] == ["request", "delivered", "failed"]
    assert message["status_code"] == status
    assert message["err_msg"].startswith("bounced after delivery")
    assert words in message["err_msg"]
    if status == 2:  # a hard bounce suppresses the address

        async def listed() -> list[str]:
            return [s["address"] for s in await suppressions(account, "hard_bounce")]

        found: list[str] = await eventually(listed, what="the address suppressed")
        assert rcpt.lower() in found

    # The reporting MTA retries (or both MX hosts got it): still one failed event.
    assert (await hand_over(inbound.port, address(to, env_id), raw))[0] == 250
    control_id, control_rcpt = await delivered(account, mx, "control")
    control = report_from("dsn_hard_511.eml", control_id, control_rcpt, account)
    await hand_over(inbound.port, address(VERP, control_id), control)
    await account.wait_for_status(control_id, "failed")
    events = [e["event"] for e in (await shown(account, env_id))["events"]]
    assert events == ["request", "delivered", "failed"]


async def test_a_complaint_records_spam_report_and_suppresses(
    inbound: Inbound, account: Tenant, mx: SmtpSink
) -> None:
    env_id, rcpt = await delivered(account, mx, "complainer")
    raw = report_from("arf_abuse.eml", env_id, rcpt, account)
    assert (await hand_over(inbound.port, address(FBL, env_id), raw))[0] == 250

    async def listed() -> list[dict[str, Any]]:
        return [s for s in await suppressions(account, "complaint") if s["address"] == rcpt.lower()]

    found: list[dict[str, Any]] = await eventually(listed, what="the complainer suppressed")
    [entry] = found
    assert entry["source_env_id"] == env_id
    message = await shown(account, env_id)
    assert [e["event"] for e in message["events"]] == ["request", "delivered", "spam_report"]
    assert message["status"] == "delivered"  # a complaint is not a failed delivery


async def test_reports_about_nothing_of_ours_change_nothing(
    inbound: Inbound, account: Tenant, mx: SmtpSink
) -> None:
    env_id, rcpt = await delivered(account, mx, "kept")
    port = inbound.port
    # A vacation auto-reply, a bounce naming another recipient, a bounce for a message we
    # never sent: each is taken (refusing would bounce the bounce) and dropped.
    vacation = report_from("vacation.eml", env_id, rcpt, account)
    assert (await hand_over(port, address(VERP, env_id), vacation))[0] == 250
    other = report_from("dsn_hard_511.eml", env_id, f"someone.else@{account.domain}", account)
    assert (await hand_over(port, address(VERP, env_id), other))[0] == 250
    unknown = unique_name("01JUNKNOWN")
    stranger = report_from("dsn_hard_511.eml", unknown, rcpt, account)
    assert (await hand_over(port, address(VERP, unknown), stranger))[0] == 250

    # A report handed over after those is processed after them: once it shows, they had
    # their chance to change something.
    control_id, control_rcpt = await delivered(account, mx, "control")
    control = report_from("dsn_hard_511.eml", control_id, control_rcpt, account)
    await hand_over(port, address(VERP, control_id), control)
    await account.wait_for_status(control_id, "failed")
    message = await shown(account, env_id)
    assert [e["event"] for e in message["events"]] == ["request", "delivered"]
    assert rcpt.lower() not in [s["address"] for s in await suppressions(account, "hard_bounce")]


@pytest.mark.parametrize(
    "rcpt_to",
    [
        "victim@example.org",  # someone else's domain: relaying
        "bounce+x@example.net",  # VERP-looking, but not our bounce domain
        f"postmaster@{BOUNCE_DOMAIN}.evil.example",
        f'"bounce+x@{BOUNCE_DOMAIN}"@example.com',
    ],
)
async def test_the_inbound_mx_relays_nothing(inbound: Inbound, mx: SmtpSink, rcpt_to: str) -> None:
    before = len(mx.received)
    code, message = await hand_over(inbound.port, rcpt_to, b"Subject: relay me\r\n\r\nhi\r\n")
    assert (code, message) == (
        550,
        "5.7.1 Relaying denied: this server accepts mail only for its own domains",
    )
    assert len(mx.received) == before


async def test_mail_for_a_sending_domain_is_taken(
    inbound: Inbound, account: Tenant, mx: SmtpSink
) -> None:
    """A domain whose MX points at postwire: replies to its senders' mail arrive here."""
    env_id, rcpt = await delivered(account, mx, "via-domain")
    raw = report_from("dsn_hard_511.eml", env_id, rcpt, account)
    assert (await hand_over(inbound.port, f"news@{account.domain}", raw))[0] == 250
    assert await account.wait_for_status(env_id, "failed") == "failed"
