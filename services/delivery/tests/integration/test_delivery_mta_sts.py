"""MTA-STS against real peers on loopback: a DNS server with the ``_mta-sts`` TXT records
and the MX and policy hosts, an HTTPS server serving each domain's policy with a
certificate from a test CA (given as ``POSTWIRE_DELIVERY_CA_FILE``), aiosmtpd MX servers
with and without STARTTLS, and the real PostgreSQL behind delivery's queue and content
store. Recipients go through the real ``Deliverer`` (routing, policy, SMTP, recording).

The policy server listens on a free port (``POSTWIRE_MTA_STS_PORT``), the MX servers on
another (``POSTWIRE_DELIVERY_PORT``): 127.0.0.1 without STARTTLS, 127.0.0.2 with it.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime

import asyncpg
import pytest
from dns.asyncresolver import Resolver
from dns.nameserver import Do53Nameserver

from postwire_common import db
from postwire_common.config import Settings
from postwire_common.content import ContentStore, StoredContent
from postwire_common.crypto import keyring
from postwire_common.schemas import DeliveryStatus, Recipient, RecipientBatch, TlsMode
from postwire_delivery.app import mta_sts
from postwire_delivery.dkim import Signer
from postwire_delivery.mta_sts import Mode, MtaSts
from postwire_delivery.mta_sts_fetch import FetchFailed, PolicyFetcher
from postwire_delivery.pipeline import Deliverer
from postwire_delivery.results import DeliveryResult, Outcome
from postwire_delivery.routing import Router
from postwire_delivery.smtp import SmtpPool
from postwire_delivery.store import DeliveryStore
from postwire_testkit.dns import LoopbackDns
from postwire_testkit.http import HttpPages
from postwire_testkit.infra import migrated_database, unique_name
from postwire_testkit.smtp import SmtpSink, free_port
from postwire_testkit.tls import CertificateAuthority, self_signed

pytestmark = pytest.mark.integration

WELL_KNOWN = "/.well-known/mta-sts.txt"
TLS_IP, PLAIN_IP = "127.0.0.2", "127.0.0.1"
# domain: (MX host address, policy, or None for a domain without MTA-STS)
DOMAINS = {
    "enforced.example": (TLS_IP, "enforce", "*.enforced.example"),
    "plain.example": (PLAIN_IP, "enforce", "mx.plain.example"),
    "elsewhere.example": (TLS_IP, "enforce", "mail.elsewhere.example"),
    "testing.example": (PLAIN_IP, "testing", "mail.testing.example"),
    "moved.example": (TLS_IP, "enforce", "old.moved.example"),
    "kept.example": (PLAIN_IP, "enforce", "mx.kept.example"),
    "retired.example": (PLAIN_IP, "enforce", "mx.retired.example"),
}
FETCHED = "fetch.example"  # policy fetching alone (no MX)


def policy(mode: str, *mx: str, max_age: int = 86400) -> str:
    lines = ["version: STSv1", f"mode: {mode}", *(f"mx: {m}" for m in mx), f"max_age: {max_age}"]
    return "\r\n".join(lines) + "\r\n"


@pytest.fixture(scope="module")
def ca() -> CertificateAuthority:
    return CertificateAuthority()


@pytest.fixture(scope="module")
def ca_file(ca: CertificateAuthority, tmp_path_factory: pytest.TempPathFactory) -> str:
    return str(ca.write(tmp_path_factory.mktemp("ca") / "ca.pem"))


@pytest.fixture(scope="module")
def pages(ca: CertificateAuthority) -> Iterator[HttpPages]:
    names = [f"mta-sts.{domain}" for domain in (*DOMAINS, "unlisted.example", FETCHED)]
    server = HttpPages(PLAIN_IP, tls=ca.issue(*names).server_context()).start()
    for domain, (_, mode, mx) in DOMAINS.items():
        server.page(f"mta-sts.{domain}", WELL_KNOWN, policy(mode, mx))
    yield server
    server.stop()


@pytest.fixture(scope="module")
def mx_port() -> int:
    return free_port()


@pytest.fixture(scope="module")
def plain_mx(mx_port: int) -> Iterator[SmtpSink]:
    sink = SmtpSink(PLAIN_IP, mx_port).start()
    yield sink
    sink.stop()


@pytest.fixture(scope="module")
def tls_mx(mx_port: int, ca: CertificateAuthority) -> Iterator[SmtpSink]:
    names = [f"mx.{domain}" for domain, (ip, *_) in DOMAINS.items() if ip == TLS_IP]
    sink = SmtpSink(TLS_IP, mx_port, tls=ca.issue(*names).server_context()).start()
    yield sink
    sink.stop()


@pytest.fixture(scope="module")
def dns() -> Iterator[LoopbackDns]:
    server = LoopbackDns().start()
    for domain, (ip, *_) in DOMAINS.items():
        server.mail_domain(domain, ip)
        server.txt(f"_mta-sts.{domain}", "v=STSv1; id=1;")
        server.a(f"mta-sts.{domain}", PLAIN_IP)
    server.mail_domain("unlisted.example", PLAIN_IP)  # no MTA-STS at all
    server.a(f"mta-sts.{FETCHED}", PLAIN_IP)
    server.a("mta-sts.selfsigned.example", PLAIN_IP)
    server.a("mta-sts.misnamed.example", PLAIN_IP)  # the CA-signed server, not its name
    yield server
    server.stop()


@pytest.fixture(scope="module")
async def pool() -> AsyncIterator[asyncpg.Pool]:
    async with migrated_database() as url:
        made = await db.create_pool(url)
        yield made
        await made.close()


@pytest.fixture
def settings(dns: LoopbackDns, pages: HttpPages, mx_port: int, ca_file: str) -> Settings:
    return Settings(
        dns_nameservers=[dns.nameserver],
        allow_private_targets=True,
        delivery_port=mx_port,
        delivery_ca_file=ca_file,
        delivery_attempt_timeout=10,
        mta_sts=True,
        mta_sts_port=pages.port,
    )


class Delivery:
    """The real ``Deliverer`` with its store, content store, router and SMTP pool."""

    def __init__(self, pool: asyncpg.Pool, settings: Settings, policies: MtaSts | None) -> None:
        self.store = DeliveryStore(pool)
        self.contents = ContentStore(pool)
        self.smtp = SmtpPool(
            "postwire.test", per_host=2, timeout=5, ca_file=settings.delivery_ca_file
        )
        self.deliverer = Deliverer(
            settings,
            self.store,
            self.contents,
            Router(settings),
            self.smtp,
            lambda: None,
            lambda lane: 2,
            Signer(self.store.signing_keys, keyring(settings)),
            policies,
        )

    async def send(self, rcpt: str, tls: TlsMode = TlsMode.OPPORTUNISTIC) -> DeliveryResult:
        env_id, request_id = unique_name("e"), unique_name("r")
        domain = rcpt.rpartition("@")[2]
        await self.contents.put(
            request_id,
            "acct",
            StoredContent(
                b"From: s@shop.example\r\nSubject: hello\r\n",
                b"MIME-Version: 1.0\r\nContent-Type: text/plain\r\n\r\nhello\r\n",
            ),
        )
        batch = RecipientBatch(
            request_id=request_id,
            content_id=request_id,
            tenant_id="t",
            sender="s@shop.example",
            domain=domain,
            recv_time=datetime.now(UTC),
            recipients=[Recipient(env_id=env_id, msg_id=f"<{env_id}@x>", rcpt=rcpt)],
            tls=tls,
        )
        await self.store.intake([(batch, domain)])
        item = await self.store.queued(env_id)
        assert item is not None
        await self.deliverer.handle(item)
        result = await self.store.result(env_id)
        assert result is not None, "the attempt did not end (soft bounce?)"
        return result


@pytest.fixture
async def delivery(pool: asyncpg.Pool, settings: Settings) -> AsyncIterator[Delivery]:
    made = Delivery(pool, settings, mta_sts(settings))
    yield made
    await made.smtp.close()


def uncached_resolver(server: LoopbackDns) -> Resolver:
    """Sees every change to the loopback zone at once (no DNS cache)."""
    resolver = Resolver(configure=False)
    resolver.nameservers = [Do53Nameserver(server.host, server.port)]
    return resolver


def mta_sts_queries(server: LoopbackDns) -> list[tuple[str, str]]:
    return [q for q in server.queries if q[0].startswith("_mta-sts.")]


# -- enforce --------------------------------------------------------------------------------


@pytest.mark.parametrize("tls", [TlsMode.OPPORTUNISTIC, TlsMode.NONE])
async def test_enforce_delivers_over_verified_tls_even_when_the_account_said_none(
    delivery: Delivery, tls_mx: SmtpSink, tls: TlsMode
) -> None:
    rcpt = f"{unique_name('a')}@enforced.example"
    result = await delivery.send(rcpt, tls)
    assert result.outcome is Outcome.DELIVERED, result.message
    assert [r.tls for r in tls_mx.for_rcpt(rcpt)] == [True]


async def test_the_policy_is_fetched_once_and_cached(
    delivery: Delivery, tls_mx: SmtpSink, pages: HttpPages, dns: LoopbackDns
) -> None:
    fetched, asked = len(pages.gets("mta-sts.enforced.example")), len(mta_sts_queries(dns))
    for n in range(3):
        rcpt = f"{unique_name(f'c{n}')}@enforced.example"
        assert (await delivery.send(rcpt)).outcome is Outcome.DELIVERED
    assert len(pages.gets("mta-sts.enforced.example")) == fetched + 1
    assert len(mta_sts_queries(dns)) == asked + 1  # the TXT record, once a minute at most
    [get] = pages.gets("mta-sts.enforced.example")[-1:]
    assert get.path == WELL_KNOWN


async def test_enforce_fails_mail_to_an_mx_without_starttls(
    delivery: Delivery, plain_mx: SmtpSink
) -> None:
    rcpt = f"{unique_name('p')}@plain.example"
    result = await delivery.send(rcpt)
    assert (result.outcome, result.status) == (Outcome.HARD, DeliveryStatus.FAILED)
    assert result.message == (
        "MTA-STS policy of plain.example (enforce): mx.plain.example does not offer STARTTLS"
    )
    assert plain_mx.for_rcpt(rcpt) == []  # nothing went out in plain text


async def test_enforce_names_mta_sts_when_the_account_required_tls_too(
    delivery: Delivery,
) -> None:
    result = await delivery.send(f"{unique_name('r')}@plain.example", TlsMode.REQUIRE)
    assert result.message.startswith("MTA-STS policy of plain.example (enforce): ")


async def test_enforce_fails_mail_when_no_mx_host_matches(
    delivery: Delivery, tls_mx: SmtpSink
) -> None:
    rcpt = f"{unique_name('x')}@elsewhere.example"
    result = await delivery.send(rcpt)
    assert (result.outcome, result.status) == (Outcome.HARD, DeliveryStatus.FAILED)
    assert result.message == (
        "MTA-STS policy of elsewhere.example (enforce): no MX host matches it "
        "(mx.elsewhere.example)"
    )
    assert tls_mx.for_rcpt(rcpt) == []


# -- testing, no policy, setting off --------------------------------------------------------


async def test_testing_delivers_as_usual_and_warns(
    delivery: Delivery, plain_mx: SmtpSink, caplog: pytest.LogCaptureFixture
) -> None:
    rcpt = f"{unique_name('t')}@testing.example"
    with caplog.at_level(logging.WARNING, logger="postwire.delivery.mta_sts"):
        result = await delivery.send(rcpt)
    assert result.outcome is Outcome.DELIVERED, result.message
    assert [r.tls for r in plain_mx.for_rcpt(rcpt)] == [False]
    assert any(
        "testing" in r.getMessage() and r.__dict__.get("domain") == "testing.example"
        for r in caplog.records
    )


async def test_a_domain_without_a_policy_delivers_as_usual(
    delivery: Delivery, plain_mx: SmtpSink, pages: HttpPages
) -> None:
    rcpt = f"{unique_name('u')}@unlisted.example"
    assert (await delivery.send(rcpt)).outcome is Outcome.DELIVERED
    assert pages.gets("mta-sts.unlisted.example") == []  # no TXT record: nothing fetched


async def test_with_the_setting_off_nothing_is_looked_up(
    pool: asyncpg.Pool,
    settings: Settings,
    plain_mx: SmtpSink,
    pages: HttpPages,
    dns: LoopbackDns,
) -> None:
    off = settings.model_copy(update={"mta_sts": False})
    assert mta_sts(off) is None
    asked, fetched = len(mta_sts_queries(dns)), len(pages.requests)
    delivery = Delivery(pool, off, mta_sts(off))
    try:
        rcpt = f"{unique_name('o')}@plain.example"  # enforce, MX without STARTTLS
        assert (await delivery.send(rcpt)).outcome is Outcome.DELIVERED
    finally:
        await delivery.smtp.close()
    assert [r.tls for r in plain_mx.for_rcpt(rcpt)] == [False]
    assert (len(mta_sts_queries(dns)), len(pages.requests)) == (asked, fetched)


def test_a_relay_turns_mta_sts_off(settings: Settings) -> None:
    assert mta_sts(settings.model_copy(update={"delivery_relay": "127.0.0.1:2525"})) is None


# -- policy changes and the cache -----------------------------------------------------------


async def test_a_changed_policy_is_fetched_when_the_txt_id_changes(
    pool: asyncpg.Pool,
    settings: Settings,
    dns: LoopbackDns,
    pages: HttpPages,
    ca_file: str,
    tls_mx: SmtpSink,
) -> None:
    """The policy names old.moved.example, the MX is mx.moved.example: mail fails. The
    domain publishes a new policy and id; the next message, finding no matching host,
    asks again at once (RFC 8461 5.1), fetches the new policy and is delivered."""
    fetcher = PolicyFetcher(
        uncached_resolver(dns), allow_private=True, ca_file=ca_file, port=pages.port
    )
    delivery = Delivery(pool, settings, MtaSts(fetcher))
    try:
        first = await delivery.send(f"{unique_name('m')}@moved.example")
        assert "no MX host matches it (mx.moved.example)" in first.message
        pages.page("mta-sts.moved.example", WELL_KNOWN, policy("enforce", "*.moved.example"))
        again = await delivery.send(f"{unique_name('m')}@moved.example")
        assert again.outcome is Outcome.HARD  # same id: the cached policy still counts

        dns.remove("_mta-sts.moved.example")
        dns.txt("_mta-sts.moved.example", "v=STSv1; id=2;")
        rcpt = f"{unique_name('m')}@moved.example"
        assert (await delivery.send(rcpt)).outcome is Outcome.DELIVERED
        assert [r.tls for r in tls_mx.for_rcpt(rcpt)] == [True]
    finally:
        await delivery.smtp.close()


async def test_a_failed_fetch_or_a_missing_record_keeps_the_cached_policy(
    pool: asyncpg.Pool, settings: Settings, dns: LoopbackDns, pages: HttpPages, ca_file: str
) -> None:
    fetcher = PolicyFetcher(
        uncached_resolver(dns), allow_private=True, ca_file=ca_file, port=pages.port
    )
    policies = MtaSts(fetcher, recheck=0)  # every message asks DNS again
    delivery = Delivery(pool, settings, policies)
    enforced = "MTA-STS policy of kept.example (enforce): mx.kept.example does not offer STARTTLS"
    try:
        assert (await delivery.send(f"{unique_name('k')}@kept.example")).message == enforced

        # A new id, but the policy server fails: the cached policy stays in force.
        pages.page("mta-sts.kept.example", WELL_KNOWN, "oops", status=500)
        dns.remove("_mta-sts.kept.example")
        dns.txt("_mta-sts.kept.example", "v=STSv1; id=2;")
        fetched = len(pages.gets("mta-sts.kept.example"))
        assert (await delivery.send(f"{unique_name('k')}@kept.example")).message == enforced
        assert len(pages.gets("mta-sts.kept.example")) == fetched + 1  # it was asked

        # The record gone: the cached, unexpired policy still counts.
        dns.remove("_mta-sts.kept.example")
        assert (await delivery.send(f"{unique_name('k')}@kept.example")).message == enforced
    finally:
        await delivery.smtp.close()
        pages.page("mta-sts.kept.example", WELL_KNOWN, policy("enforce", "mx.kept.example"))
        dns.txt("_mta-sts.kept.example", "v=STSv1; id=1;")


async def test_a_new_policy_with_mode_none_replaces_an_enforced_one(
    pool: asyncpg.Pool, settings: Settings, dns: LoopbackDns, pages: HttpPages, ca_file: str
) -> None:
    fetcher = PolicyFetcher(
        uncached_resolver(dns), allow_private=True, ca_file=ca_file, port=pages.port
    )
    delivery = Delivery(pool, settings, MtaSts(fetcher, recheck=0))
    try:
        refused = await delivery.send(f"{unique_name('n')}@retired.example")
        assert refused.message.startswith("MTA-STS policy of retired.example (enforce): ")
        pages.page("mta-sts.retired.example", WELL_KNOWN, policy("none"))
        dns.remove("_mta-sts.retired.example")
        dns.txt("_mta-sts.retired.example", "v=STSv1; id=2;")
        delivered = await delivery.send(f"{unique_name('n')}@retired.example")
        assert delivered.outcome is Outcome.DELIVERED, delivered.message
    finally:
        await delivery.smtp.close()


# -- fetching the policy --------------------------------------------------------------------


def fetcher_for(dns: LoopbackDns, port: int, ca_file: str, **options: bool) -> PolicyFetcher:
    return PolicyFetcher(
        uncached_resolver(dns),
        allow_private=options.get("allow_private", True),
        ca_file=ca_file,
        port=port,
    )


async def test_the_policy_is_fetched_over_https_by_name(
    dns: LoopbackDns, pages: HttpPages, ca_file: str
) -> None:
    text = policy("testing", "mx.fetch.example")
    pages.page(f"mta-sts.{FETCHED}", WELL_KNOWN, text)
    assert await fetcher_for(dns, pages.port, ca_file).policy_text(FETCHED) == text
    get = pages.gets(f"mta-sts.{FETCHED}")[-1]
    assert get.headers["Host"] == f"mta-sts.{FETCHED}:{pages.port}"
    policies = MtaSts(fetcher_for(dns, pages.port, ca_file))
    dns.txt(f"_mta-sts.{FETCHED}", "v=STSv1; id=7")
    try:
        found = await policies.policy(FETCHED)
    finally:
        dns.remove(f"_mta-sts.{FETCHED}")
    assert found is not None
    assert (found.mode, found.mx) == (Mode.TESTING, ("mx.fetch.example",))


@pytest.mark.parametrize(
    ("page", "why"),
    [
        ({"status": 404}, "answered 404"),
        # Redirects are not followed (RFC 8461 3.3), even to the right place.
        (
            {"status": 301, "headers": {"Location": f"https://mta-sts.{FETCHED}/other.txt"}},
            "answered 301",
        ),
        ({"content_type": "text/html"}, "served as 'text/html', not text/plain"),
        ({"body": "x" * (64 * 1024 + 1)}, "larger than 64 KB"),
        ({"body": b"\xff\xfe"}, "not UTF-8"),
    ],
)
async def test_policies_not_taken(
    dns: LoopbackDns, pages: HttpPages, ca_file: str, page: dict[str, object], why: str
) -> None:
    body = page.pop("body", policy("enforce", "mx.fetch.example"))
    pages.page(f"mta-sts.{FETCHED}", WELL_KNOWN, body, **page)  # type: ignore[arg-type]
    with pytest.raises(FetchFailed, match=why):
        await fetcher_for(dns, pages.port, ca_file).policy_text(FETCHED)


async def test_a_policy_host_at_a_private_address_is_not_asked(
    dns: LoopbackDns, pages: HttpPages, ca_file: str
) -> None:
    before = len(pages.gets(f"mta-sts.{FETCHED}"))
    fetcher = fetcher_for(dns, pages.port, ca_file, allow_private=False)
    with pytest.raises(FetchFailed, match=r"127\.0\.0\.1 is not a public address"):
        await fetcher.policy_text(FETCHED)
    assert len(pages.gets(f"mta-sts.{FETCHED}")) == before


async def test_a_policy_host_whose_certificate_does_not_verify_is_not_believed(
    dns: LoopbackDns, ca_file: str
) -> None:
    server = HttpPages(
        PLAIN_IP, tls=self_signed("mta-sts.selfsigned.example").server_context()
    ).start()
    try:
        server.page("mta-sts.selfsigned.example", WELL_KNOWN, policy("enforce", "a.test"))
        fetcher = fetcher_for(dns, server.port, ca_file)
        with pytest.raises(FetchFailed, match="CERTIFICATE_VERIFY_FAILED"):
            await fetcher.policy_text("selfsigned.example")
    finally:
        server.stop()
    assert server.requests == []  # the handshake failed before any request


async def test_the_certificate_must_name_the_policy_host(
    dns: LoopbackDns, pages: HttpPages, ca_file: str
) -> None:
    pages.page("mta-sts.misnamed.example", WELL_KNOWN, policy("enforce", "a.test"))
    fetcher = fetcher_for(dns, pages.port, ca_file)
    with pytest.raises(FetchFailed, match="Hostname mismatch"):
        await fetcher.policy_text("misnamed.example")
    assert pages.gets("mta-sts.misnamed.example") == []
