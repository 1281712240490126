"""TLS modes against real SMTP servers on loopback (aiosmtpd): without STARTTLS, with a
self-signed certificate, and with a certificate from a test CA given as the CA file.

``require`` takes only STARTTLS with a certificate that verifies for the MX host name
(``mx.test``; the connection goes to 127.0.0.1), ``opportunistic`` takes what it gets,
``none`` never starts TLS. A pooled session is reused only for the mode it was made for.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from postwire_common.schemas import DeliveryStatus, TlsMode
from postwire_delivery.pipeline import no_session
from postwire_delivery.results import Outcome
from postwire_delivery.routing import Target
from postwire_delivery.smtp import ConnectFailed, SmtpPool, TlsFailed
from postwire_testkit.smtp import SmtpSink
from postwire_testkit.tls import CertificateAuthority, self_signed

pytestmark = pytest.mark.integration

MESSAGE = b"Subject: x\r\n\r\nhello\r\n"
REQUIRE, OPPORTUNISTIC, NONE = TlsMode.REQUIRE, TlsMode.OPPORTUNISTIC, TlsMode.NONE


@pytest.fixture(scope="module")
def ca() -> CertificateAuthority:
    return CertificateAuthority()


@pytest.fixture(scope="module")
def ca_file(ca: CertificateAuthority, tmp_path_factory: pytest.TempPathFactory) -> str:
    return str(ca.write(tmp_path_factory.mktemp("ca") / "ca.pem"))


@pytest.fixture
def plain() -> Iterator[SmtpSink]:
    server = SmtpSink().start()
    yield server
    server.stop()


@pytest.fixture
def self_signed_mx() -> Iterator[SmtpSink]:
    server = SmtpSink(tls=self_signed("mx.test").server_context()).start()
    yield server
    server.stop()


@pytest.fixture
def ca_signed_mx(ca: CertificateAuthority) -> Iterator[SmtpSink]:
    server = SmtpSink(tls=ca.issue("mx.test").server_context()).start()
    yield server
    server.stop()


def mx(sink: SmtpSink) -> Target:
    return Target("mx.test", "127.0.0.1", sink.port)


async def send(pool: SmtpPool, sink: SmtpSink, rcpt: str, tls: TlsMode) -> Outcome:
    return (await pool.send(mx(sink), "s@shop.example", rcpt, MESSAGE, tls)).outcome


async def test_without_starttls_require_fails_and_the_others_deliver_in_plain_text(
    plain: SmtpSink,
) -> None:
    pool = SmtpPool("postwire.test", per_host=1)  # one connection: reuse if allowed
    try:
        assert await send(pool, plain, "a@example.org", OPPORTUNISTIC) is Outcome.DELIVERED
        # The plain session now idle in the pool is not one a require send may take.
        with pytest.raises(TlsFailed, match=r"^mx\.test does not offer STARTTLS$"):
            await send(pool, plain, "b@example.org", REQUIRE)
        assert await send(pool, plain, "c@example.org", NONE) is Outcome.DELIVERED
    finally:
        await pool.close()
    assert [(r.rcpt_tos, r.tls) for r in plain.received] == [
        (["a@example.org"], False),
        (["c@example.org"], False),
    ]


async def test_a_self_signed_certificate_fails_require_only(self_signed_mx: SmtpSink) -> None:
    pool = SmtpPool("postwire.test", per_host=1)
    try:
        with pytest.raises(
            TlsFailed, match=r"^mx\.test: certificate verify failed: self.signed certificate$"
        ):
            await send(pool, self_signed_mx, "a@example.org", REQUIRE)
        assert await send(pool, self_signed_mx, "b@example.org", OPPORTUNISTIC) is (
            Outcome.DELIVERED
        )
        assert await send(pool, self_signed_mx, "c@example.org", NONE) is Outcome.DELIVERED
        # Reused opportunistic session: still not good enough for require.
        with pytest.raises(TlsFailed):
            await send(pool, self_signed_mx, "d@example.org", REQUIRE)
    finally:
        await pool.close()
    # opportunistic took STARTTLS (unverified); none never did, although it was offered.
    assert [(r.rcpt_tos, r.tls) for r in self_signed_mx.received] == [
        (["b@example.org"], True),
        (["c@example.org"], False),
    ]


async def test_a_certificate_from_the_ca_file_satisfies_require(
    ca_signed_mx: SmtpSink, ca_file: str
) -> None:
    pool = SmtpPool("postwire.test", per_host=1, ca_file=ca_file)
    try:
        for rcpt in ("a@example.org", "b@example.org"):  # the second reuses the session
            assert await send(pool, ca_signed_mx, rcpt, REQUIRE) is Outcome.DELIVERED
    finally:
        await pool.close()
    assert [(r.rcpt_tos, r.tls) for r in ca_signed_mx.received] == [
        (["a@example.org"], True),
        (["b@example.org"], True),
    ]


async def test_without_the_ca_file_that_certificate_does_not_verify(
    ca_signed_mx: SmtpSink,
) -> None:
    pool = SmtpPool("postwire.test", per_host=1)  # the system trust store only
    try:
        with pytest.raises(TlsFailed, match="certificate verify failed: unable to get local"):
            await send(pool, ca_signed_mx, "a@example.org", REQUIRE)
    finally:
        await pool.close()
    assert ca_signed_mx.received == []


async def test_the_certificate_must_name_the_mx_host(
    ca: CertificateAuthority, ca_file: str
) -> None:
    # Valid for 127.0.0.1 (where we connect) but not for mx.test (the MX host's name).
    sink = SmtpSink(tls=ca.issue("other.test", "127.0.0.1").server_context()).start()
    pool = SmtpPool("postwire.test", per_host=1, ca_file=ca_file)
    try:
        with pytest.raises(TlsFailed, match=r"certificate verify failed: Hostname mismatch"):
            await send(pool, sink, "a@example.org", REQUIRE)
    finally:
        await pool.close()
        sink.stop()
    assert sink.received == []


def test_a_missing_ca_file_stops_the_pool_at_start(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        SmtpPool("postwire.test", per_host=1, ca_file=str(tmp_path / "missing.pem"))


@pytest.mark.parametrize(
    ("failures", "outcome", "message"),
    [
        (
            [TlsFailed("mx1.example.org does not offer STARTTLS")],
            Outcome.HARD,
            "TLS required for example.org: mx1.example.org does not offer STARTTLS",
        ),
        (
            [TlsFailed("mx1.example.org: certificate verify failed: x"), TlsFailed("mx2 y")],
            Outcome.HARD,
            "TLS required for example.org: mx1.example.org: certificate verify failed: x; mx2 y",
        ),
        # One host merely unreachable: it may do TLS when it is back, so retry.
        (
            [ConnectFailed("mx1 [192.0.2.1]: timed out"), TlsFailed("mx2 does not offer STARTTLS")],
            Outcome.SOFT,
            "could not connect: mx1 [192.0.2.1]: timed out; mx2 does not offer STARTTLS",
        ),
        ([ConnectFailed("mx1: refused")], Outcome.SOFT, "could not connect: mx1: refused"),
    ],
)
def test_no_session_fails_only_when_every_host_refused_tls(
    failures: list[ConnectFailed], outcome: Outcome, message: str
) -> None:
    result = no_session("ann@example.org", failures)
    assert (result.outcome, result.message) == (outcome, message)
    if outcome is Outcome.HARD:
        assert result.status is DeliveryStatus.FAILED
