"""SMTP submission with real clients besides smtplib: swaks (a Debian package) and Postfix
as an application server's relay client with SASL, the way production traffic arrives.
Both are installed by ``scripts/install-mta-tools`` (``scripts/test`` runs it)."""

from __future__ import annotations

import asyncio
import shutil
import smtplib
import subprocess
import time
from email.message import EmailMessage
from pathlib import Path

import pytest

from postwire_testkit.api import Tenant
from postwire_testkit.platform import PlatformProcess
from postwire_testkit.postfix import PostfixRelayClient
from postwire_testkit.smtp import SmtpSink, free_port
from postwire_testkit.wait import eventually

INSTALL = "run scripts/install-mta-tools (as root) to install swaks and Postfix"


@pytest.fixture
def port(env: dict[str, str], platform: PlatformProcess) -> int:
    return int(env["POSTWIRE_SMTP_PORT"])


def swaks(*args: str) -> subprocess.CompletedProcess[str]:
    command = shutil.which("swaks")
    assert command, INSTALL
    return subprocess.run(  # noqa: S603 (our own arguments)
        [command, "--timeout", "30", *args], capture_output=True, text=True, timeout=60, check=False
    )


async def test_swaks_sends_with_an_attachment_and_gets_the_seed_refusal(
    tenant: Tenant, port: int, mx: SmtpSink, tmp_path: Path
) -> None:
    rcpts = [f"swaks1.{tenant.name}@example.org", f"swaks2.{tenant.name}@example.net"]
    report = tmp_path / "report.pdf"
    report.write_bytes(b"%PDF-1.4 a report")
    login = ["--server", f"127.0.0.1:{port}", "--tls", "--auth", "LOGIN",
             "--auth-user", tenant.api_user, "--auth-password", tenant.api_key,
             "--from", tenant.sender, "--to", ",".join(rcpts)]  # fmt: skip

    sent = await asyncio.to_thread(
        swaks, *login, "--header", "Subject: from swaks", "--attach", f"@{report}"
    )
    assert sent.returncode == 0, sent.stdout + sent.stderr
    assert "<~  250 2.0.0 OK queued as" in sent.stdout
    for rcpt in rcpts:
        await eventually(lambda rcpt=rcpt: mx.for_rcpt(rcpt), what=f"swaks mail to {rcpt}")
        [got] = mx.for_rcpt(rcpt)
        mail = got.message
        assert mail["Subject"] == "from swaks"
        [attached] = list(mail.iter_attachments())
        assert attached.get_content() == b"%PDF-1.4 a report"

    tool = tmp_path / "tool.bin"
    tool.write_bytes(b"MZ")
    refused = await asyncio.to_thread(
        swaks, *login, "--attach-name", "Tool.Exe. ", "--attach", f"@{tool}"
    )
    assert refused.returncode != 0
    assert "<~* 554 Transaction failed: Not allowed attachement type .exe\n" in refused.stdout

    wrong = await asyncio.to_thread(
        swaks, *[a if a != tenant.api_key else "wrong-key" for a in login]
    )
    assert wrong.returncode != 0
    assert "<~* 535 5.7.8 Authentication credentials invalid\n" in wrong.stdout


@pytest.mark.parametrize("mechanism", ["plain", "login"])
async def test_postfix_relays_into_submission_with_sasl(
    tenant: Tenant, port: int, mx: SmtpSink, tmp_path: Path, mechanism: str
) -> None:
    rcpts = [f"pf-{mechanism}-{n}.{tenant.name}@example.org" for n in range(3)]
    relay = PostfixRelayClient(
        tmp_path / "postfix", free_port(), "127.0.0.1", port, tenant.api_user, tenant.api_key,
        sasl_mechanisms=mechanism,
    )  # fmt: skip
    mail = EmailMessage()
    mail["From"] = tenant.sender
    mail["To"] = ", ".join(rcpts)
    mail["Subject"] = f"relayed by Postfix ({mechanism})"
    mail.set_content("From an application server's Postfix.\n")

    def submit() -> None:
        with smtplib.SMTP("127.0.0.1", relay.listen_port, timeout=30) as client:
            client.send_message(mail)
        relay.wait_empty(60)

    with relay:
        await asyncio.to_thread(submit)
        log = relay.log_text()
    assert "status=sent" in log, log
    assert "250 2.0.0 OK queued as" in log, log
    for rcpt in rcpts:
        await eventually(lambda rcpt=rcpt: mx.for_rcpt(rcpt), what=f"relayed mail to {rcpt}")
        [got] = mx.for_rcpt(rcpt)
        assert got.message["Subject"] == f"relayed by Postfix ({mechanism})"
        assert got.message["Received"] is not None  # Postfix's own trace header, kept


async def test_postfix_with_a_wrong_key_defers_and_sends_nothing(
    tenant: Tenant, port: int, mx: SmtpSink, tmp_path: Path
) -> None:
    rcpt = f"pf-wrong.{tenant.name}@example.org"
    relay = PostfixRelayClient(
        tmp_path / "postfix", free_port(), "127.0.0.1", port, tenant.api_user, "wrong-key"
    )

    def submit() -> str:
        with smtplib.SMTP("127.0.0.1", relay.listen_port, timeout=30) as client:
            client.sendmail(tenant.sender, [rcpt], b"Subject: x\r\n\r\nbody\r\n")
        for _ in range(100):
            if "SASL authentication failed" in relay.log_text():
                break
            time.sleep(0.1)
        return relay.log_text()

    with relay:
        log = await asyncio.to_thread(submit)
        assert relay.queued() == 1  # deferred, kept for a later try
    assert "SASL authentication failed" in log, log
    assert mx.for_rcpt(rcpt) == []
