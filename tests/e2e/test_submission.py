"""SMTP submission (the Devino seed's SMTP API) driven by real clients: Python's smtplib
and raw sockets here, swaks and Postfix in ``test_submission_clients.py``. Mail goes
through the whole platform to the loopback MX."""

from __future__ import annotations

import asyncio
import base64
import os
import smtplib
import socket
import ssl
import time
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from email.message import EmailMessage
from typing import Any

import httpx
import pytest

from postwire_testkit.api import Tenant, envelope
from postwire_testkit.dns import LoopbackDns
from postwire_testkit.http import HttpReceiver
from postwire_testkit.platform import PlatformProcess
from postwire_testkit.smtp import SmtpSink
from postwire_testkit.wait import eventually

from .test_dkim import dns_lookup, publish_dkim, verifies
from .test_ledger import pg_cluster
from .test_webhooks import signature_ok

NO_VERIFY = ssl._create_unverified_context()  # noqa: S323 (the self-signed certificate)
FAILED = "554 Transaction failed: "
MB10 = 10 * 1024 * 1024


@pytest.fixture
def ports(env: dict[str, str], platform: PlatformProcess) -> tuple[int, int]:
    return int(env["POSTWIRE_SMTP_PORT"]), int(env["POSTWIRE_SMTPS_PORT"])


def connect(port: int, *, tls: bool = True, source: str = "127.0.0.1") -> smtplib.SMTP:
    client = smtplib.SMTP("127.0.0.1", port, timeout=30, source_address=(source, 0))
    client.ehlo("client.test")
    if tls:
        client.starttls(context=NO_VERIFY)
        client.ehlo("client.test")
    return client


def login(port: int, tenant: Tenant) -> smtplib.SMTP:
    client = connect(port)
    client.login(tenant.api_user, tenant.api_key)
    return client


def reply(answer: tuple[int, bytes]) -> str:
    return f"{answer[0]} {answer[1].decode()}"


def transaction(
    client: smtplib.SMTP, sender: str, rcpts: list[str], data: bytes, mail_options: str = ""
) -> str:
    """MAIL, RCPT for each, DATA: the first refusal, or the final reply."""
    answer = client.docmd("MAIL", f"FROM:<{sender}>{mail_options}")
    if answer[0] != 250:
        client.rset()
        return reply(answer)
    for rcpt in rcpts:
        answer = client.docmd("RCPT", f"TO:<{rcpt}>")
        if answer[0] != 250:
            client.rset()
            return reply(answer)
    return reply(client.data(data))


def message(tenant: Tenant, to: str, **headers: str) -> EmailMessage:
    mail = EmailMessage()
    mail["From"] = f"Shop <{tenant.sender}>"
    mail["To"] = to
    mail["Subject"] = headers.pop("subject", "Order №7 ✓")
    mail["Message-ID"] = f"<{uuid.uuid4().hex}@client.test>"
    for name, value in headers.items():
        mail[name.replace("_", "-")] = value
    mail.set_content("Привет! Your order is ready.\n")
    return mail


def env_ids(final: str) -> list[str]:
    assert final.startswith("250 2.0.0 OK queued as "), final
    return final.removeprefix("250 2.0.0 OK queued as ").split()


async def run(fn: Callable[..., Any], *args: Any) -> Any:
    return await asyncio.to_thread(fn, *args)


async def test_each_recipient_is_a_message_delivered_as_sent_with_a_signed_webhook(
    tenant: Tenant, ports: tuple[int, int], mx: SmtpSink, receiver: HttpReceiver, dns: LoopbackDns
) -> None:
    hook = await tenant.add_webhook(receiver.url(f"/{tenant.name}"), ["delivered"])
    await publish_dkim(tenant, dns)
    lookup = dns_lookup(dns)
    rcpts = [f"ann.{tenant.name}@example.org", f"bob.{tenant.name}@example.net",
             f"cid.{tenant.name}@example.com"]  # fmt: skip
    mail = message(tenant, f"{rcpts[0]}, {rcpts[1]}", Cc=rcpts[2], Bcc="hidden@example.org")
    mail.add_alternative("<p>Привет, <b>HTML</b></p>", subtype="html")
    raw = mail.as_bytes(policy=mail.policy.clone(linesep="\r\n", cte_type="8bit"))

    def send() -> str:
        with login(ports[0], tenant) as client:
            assert client.has_extn("smtputf8")
            assert client.has_extn("8bitmime")
            assert client.esmtp_features["size"] == str(10 * 1024 * 1024)
            return transaction(client, tenant.sender, rcpts, raw)

    ids = env_ids(await run(send))
    assert len(ids) == 3

    body = raw.split(b"\r\n\r\n", 1)[1]
    for rcpt in rcpts:
        await eventually(lambda rcpt=rcpt: mx.for_rcpt(rcpt), what=f"mail to {rcpt}")
        arrived = mx.for_rcpt(rcpt)
        assert len(arrived) == 1
        got = arrived[0]
        assert got.rcpt_tos == [rcpt]
        parsed = got.message
        # Kept as sent: the client's headers, Message-ID and (8-bit) body, byte for byte.
        assert parsed["Message-ID"] == mail["Message-ID"]
        assert parsed["To"] == mail["To"]
        assert parsed["Cc"] == rcpts[2]
        assert parsed["Subject"] == "Order №7 ✓"
        assert parsed["Bcc"] is None  # never shown to the recipients
        assert parsed["X-Postwire-Env-Id"] in ids
        assert verifies(got.data, 0, lookup)  # signed over the 8-bit message as sent
        assert got.data.split(b"\r\n\r\n", 1)[1] == body

    def delivered() -> dict[str, dict[str, Any]]:
        pushes = [p.json() for p in receiver.posts(f"/{tenant.name}")]
        return {p["env_id"]: p for p in pushes if p.get("event") == "delivered"}

    await eventually(lambda: set(delivered()) == set(ids), what="a delivered push each")
    for push in delivered().values():
        assert signature_ok(hook["app_key"], push)
        assert push["msg_id"] == mail["Message-ID"]
        assert push["from"] == tenant.sender
    shown = envelope(await tenant.message(ids[0]))["Result"]
    assert shown["subject"] == "Order №7 ✓"
    assert shown["method"] == "smtp"


async def test_implicit_tls_port_and_auth_login(tenant: Tenant, ports: tuple[int, int]) -> None:
    rcpt = f"tls.{tenant.name}@example.org"

    def send() -> str:
        with smtplib.SMTP_SSL("127.0.0.1", ports[1], context=NO_VERIFY, timeout=30) as client:
            client.ehlo("client.test")
            assert "STARTTLS" not in client.esmtp_features  # already encrypted
            client.user, client.password = tenant.api_user, tenant.api_key
            client.auth("LOGIN", client.auth_login, initial_response_ok=False)
            return transaction(client, tenant.sender, [rcpt], message(tenant, rcpt).as_bytes())

    [env_id] = env_ids(await run(send))
    assert await tenant.wait_for_status(env_id, "delivered") == "delivered"


async def test_seed_error_texts_byte_for_byte(
    tenant: Tenant, other_tenant: Tenant, ports: tuple[int, int]
) -> None:
    rcpt = f"err.{tenant.name}@example.org"
    ok = message(tenant, rcpt).as_bytes()

    def check() -> None:
        with connect(ports[0]) as anonymous:  # no AUTH: nothing is relayed
            assert transaction(anonymous, tenant.sender, [rcpt], ok) == (
                FAILED + "Must authenticate before sending mail"
            )
            assert reply(anonymous.docmd("RCPT", f"TO:<{rcpt}>")) == (
                FAILED + "Must authenticate before sending mail"
            )
        with login(ports[0], tenant) as client:
            assert transaction(client, other_tenant.sender, [rcpt], ok) == (
                FAILED + f"Disallowed source address: {other_tenant.sender}"
            )
            assert transaction(client, f"nobody@{tenant.domain}", [rcpt], ok) == (
                FAILED + f"Disallowed source address: nobody@{tenant.domain}"
            )
            assert transaction(client, tenant.sender, ["ann@localhost"], ok) == (
                FAILED + "Invalid recipient address: ann@localhost"
            )
            # A From header of another account is refused as the envelope sender is.
            forged = message(tenant, rcpt)
            forged.replace_header("From", other_tenant.sender)
            assert transaction(client, tenant.sender, [rcpt], forged.as_bytes()) == (
                FAILED + f"Disallowed source address: {other_tenant.sender}"
            )
            exe = message(tenant, rcpt)
            exe.add_attachment(b"MZ\x90\x00", maintype="application", subtype="octet-stream",
                               filename="Invoice.PDF.exe")  # fmt: skip
            assert transaction(client, tenant.sender, [rcpt], exe.as_bytes()) == (
                FAILED + "Not allowed attachement type .exe"
            )
            # Declared too large: refused at MAIL, before any data is sent.
            assert transaction(client, tenant.sender, [rcpt], ok, f" SIZE={MB10 + 1}") == (
                FAILED + "Message exceeds fixed size limit"
            )
            # Sent too large: 10 MB and one byte of message.
            head = b"Subject: big\r\n\r\n"
            line = b"x" * 998 + b"\r\n"
            filler = line * ((MB10 - len(head)) // len(line))
            big = head + filler + b"y" * (MB10 - len(head) - len(filler) + 1)
            assert len(big) == MB10 + 1
            assert transaction(client, tenant.sender, [rcpt], big) == (
                FAILED + "Message exceeds fixed size limit"
            )
            # The session goes on after each refusal.
            env_ids(transaction(client, tenant.sender, [rcpt], ok))

    await run(check)


async def test_auth_before_tls_is_refused_and_wrong_credentials_fail(
    tenant: Tenant, ports: tuple[int, int]
) -> None:
    def check() -> None:
        with connect(ports[0], tls=False) as plain:
            assert not plain.has_extn("auth")  # not offered in the clear
            creds = base64.b64encode(f"\0{tenant.api_user}\0{tenant.api_key}".encode()).decode()
            answer = reply(plain.docmd("AUTH", f"PLAIN {creds}"))
            assert answer.startswith("538 5.7.11"), answer
        with connect(ports[0]) as client:
            with pytest.raises(smtplib.SMTPAuthenticationError) as wrong:
                client.login(tenant.api_user, "not-the-key")
            assert wrong.value.smtp_code == 535
            with pytest.raises(smtplib.SMTPAuthenticationError):
                client.login("nobody.at.all", tenant.api_key)

    await run(check)


async def test_smuggled_end_of_data_forms_never_split_a_message(
    tenant: Tenant, ports: tuple[int, int], mx: SmtpSink
) -> None:
    """CVE-2023-51764/51765/51766 forms: each stays text inside the one message."""
    forms = [b"\n.\n", b"\n.\r\n", b"\r.\r\n", b"\r\n.\r", b"\r.\r", b"\r\n.\n"]
    victim = f"victim.{tenant.name}@example.net"
    rcpt = f"smuggle.{tenant.name}@example.org"
    creds = base64.b64encode(f"\0{tenant.api_user}\0{tenant.api_key}".encode())

    def attack(form: bytes, n: int) -> bytes:
        raw = socket.create_connection(("127.0.0.1", ports[0]), timeout=30)
        stream = raw.makefile("rb")
        stream.readline()
        raw.sendall(b"EHLO x\r\nSTARTTLS\r\n")
        while not stream.readline().startswith(b"220"):
            pass
        conn = NO_VERIFY.wrap_socket(raw, server_hostname="postwire.test")
        lines = conn.makefile("rb")
        smuggled = (
            b"MAIL FROM:<" + tenant.sender.encode() + b">\r\nRCPT TO:<" + victim.encode()
            + b">\r\nDATA\r\nSubject: smuggled\r\n\r\nsmuggled\r\n"
        )  # fmt: skip
        conn.sendall(
            b"EHLO x\r\nAUTH PLAIN " + creds + b"\r\nMAIL FROM:<" + tenant.sender.encode()
            + b">\r\nRCPT TO:<" + rcpt.encode() + b">\r\nDATA\r\n"
            + b"Subject: first " + str(n).encode() + b"\r\n\r\nfirst" + form + smuggled
            + b".\r\nQUIT\r\n"
        )  # fmt: skip
        replies = lines.read()
        conn.close()
        return replies

    for n, form in enumerate(forms):
        replies = await run(attack, form, n)
        # One message: one 250 for DATA, and nothing that answers a second transaction.
        assert replies.count(b"250 2.0.0 OK queued as") == 1, (form, replies)
        assert replies.count(b"354 ") == 1, (form, replies)
    await eventually(lambda: len(mx.for_rcpt(rcpt)) == len(forms), what="the first messages")
    for got in mx.for_rcpt(rcpt):
        assert b"smuggled" in got.data  # carried inside, as text
    await asyncio.sleep(1)
    assert mx.for_rcpt(victim) == []


async def test_commands_sent_before_starttls_completes_are_discarded(
    tenant: Tenant, ports: tuple[int, int]
) -> None:
    def check() -> bytes:
        raw = socket.create_connection(("127.0.0.1", ports[0]), timeout=10)
        stream = raw.makefile("rb")
        stream.readline()
        raw.sendall(b"EHLO x\r\n")
        while not stream.readline().startswith(b"250 "):
            pass
        # Injected after STARTTLS, in the same packet: must not run inside the TLS session.
        raw.sendall(b"STARTTLS\r\nMAIL FROM:<" + tenant.sender.encode() + b">\r\n")
        assert stream.readline().startswith(b"220")
        conn = NO_VERIFY.wrap_socket(raw, server_hostname="postwire.test")
        conn.sendall(b"NOOP\r\n")
        first = conn.makefile("rb").readline()
        conn.close()
        return first

    assert (await run(check)).startswith(b"250 OK")  # NOOP's answer: nothing came before


async def test_same_message_id_and_recipients_is_one_submission(
    tenant: Tenant, ports: tuple[int, int], mx: SmtpSink
) -> None:
    rcpt = f"again.{tenant.name}@example.org"
    mail = message(tenant, rcpt)

    def send(data: bytes) -> str:
        with login(ports[0], tenant) as client:
            return transaction(client, tenant.sender, [rcpt], data)

    first = env_ids(await run(send, mail.as_bytes()))
    assert env_ids(await run(send, mail.as_bytes())) == first  # the client retried
    changed = message(tenant, rcpt)
    changed.replace_header("Message-ID", mail["Message-ID"])
    changed.replace_header("Subject", "something else")
    refused = await run(send, changed.as_bytes())
    assert refused.startswith(FAILED), refused
    await tenant.wait_for_status(first[0], "delivered")
    await asyncio.sleep(1)
    assert len(mx.for_rcpt(rcpt)) == 1


async def test_auth_guessing_is_slowed_then_the_address_is_locked_out(
    tenant: Tenant, ports: tuple[int, int], platform: PlatformProcess
) -> None:
    source = "127.0.0.77"  # its own address: other tests' logins are not locked out

    def guess(n: int) -> float:
        with connect(ports[0], source=source) as client:
            creds = base64.b64encode(f"\0{tenant.api_user}\0guess-{n}".encode()).decode()
            started = time.monotonic()
            answer = client.docmd("AUTH", f"PLAIN {creds}")  # one attempt
            assert answer[0] == 535, answer
            return time.monotonic() - started

    # Counted by every ingest process together: each wrong guess waits longer.
    first, second, third = [await run(guess, n) for n in range(3)]
    assert first < 0.5  # the first wrong guess is answered at once
    assert second >= 0.5
    assert third >= 1.0
    with ThreadPoolExecutor(20) as pool:  # a guesser with many sessions at once
        list(pool.map(guess, range(3, 20)))

    def right_key() -> str:
        with connect(ports[0], source=source) as client:
            try:
                client.login(tenant.api_user, tenant.api_key)
            except smtplib.SMTPAuthenticationError as exc:
                return f"{exc.smtp_code} {exc.smtp_error.decode()}"
            return "logged in"

    assert (await run(right_key)).startswith("454 4.7.0 Too many failed logins")
    # Other addresses are not affected.
    with await run(login, ports[0], tenant):
        pass
    async with httpx.AsyncClient() as http:
        metrics = (await http.get(f"{platform.url}/metrics")).text
    # Each worker process counts its own (the 19 guesses reached every one of them).
    assert 'postwire_submission_auth_total{result="failed"}' in metrics


async def test_idle_sessions_are_closed_and_one_address_holds_few(
    tenant: Tenant, ports: tuple[int, int], env: dict[str, str]
) -> None:
    def idle() -> bytes:
        raw = socket.create_connection(("127.0.0.1", ports[0]), timeout=30)
        stream = raw.makefile("rb")
        stream.readline()
        raw.sendall(b"EH")  # a command that never ends (slowloris)
        started = time.monotonic()
        rest = stream.read()  # until the server closes
        assert time.monotonic() - started < 15
        return rest

    await run(idle)  # closed by the 3 s idle timeout, not left open

    def flood() -> tuple[int, bytes]:
        """Sessions from one address until one is refused: each ingest process holds at
        most 50 (``postwire run all`` runs one per CPU, sharing the port)."""
        source = "127.0.0.88"
        held: list[socket.socket] = []
        try:
            while len(held) <= 50 * (os.cpu_count() or 1):
                sock = socket.create_connection(
                    ("127.0.0.1", ports[0]), timeout=10, source_address=(source, 0)
                )
                held.append(sock)
                greeting = sock.makefile("rb").readline()
                if not greeting.startswith(b"220"):
                    return len(held) - 1, greeting
            return len(held), b""
        finally:
            for sock in held:
                sock.close()

    accepted, refusal = await run(flood)
    assert refusal.startswith(b"421 4.7.0 Too many connections from your address"), refusal
    assert 50 <= accepted <= 50 * (os.cpu_count() or 1)


@pytest.mark.outage
async def test_a_database_outage_answers_internal_server_error_and_keeps_nothing(
    tenant: Tenant, ports: tuple[int, int], mx: SmtpSink
) -> None:
    """PostgreSQL stops (really) between two messages of one session: the second is
    refused with the seed's text, not answered 250, and never delivered."""
    first, second = f"before.{tenant.name}@example.org", f"during.{tenant.name}@example.org"

    def session() -> str:
        with login(ports[0], tenant) as client:
            env_ids(transaction(client, tenant.sender, [first], message(tenant, first).as_bytes()))
            pg_cluster("stop")  # the sender is still cached: MAIL and RCPT pass
            try:
                return transaction(
                    client, tenant.sender, [second], message(tenant, second).as_bytes()
                )
            finally:
                pg_cluster("start")

    assert await run(session) == FAILED + "Internal server error"
    await eventually(lambda: mx.for_rcpt(first), within=60, what="the message before")
    await asyncio.sleep(2)
    assert mx.for_rcpt(second) == []
