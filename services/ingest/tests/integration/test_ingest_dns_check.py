"""Domain checks by real DNS queries to an authoritative server on loopback."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from typing import Any

import pytest
from dnslib import RCODE, DNSRecord
from dnslib.server import BaseResolver, DNSLogger, DNSServer

from postwire_ingest.dns_check import (
    Expected,
    RecordCheck,
    check_domain,
    domain_state,
    statuses,
)
from postwire_ingest.dns_query import make_resolver
from postwire_ingest.domains import generate_dkim_key
from postwire_ingest.spf import SpfResult, check_host
from postwire_testkit.dns import LoopbackDns

pytestmark = pytest.mark.integration

HELO = "mail.postwire.test"
IP4, IP6 = "192.0.2.10", "2001:db8::10"
EXPECTED = Expected((IP4, IP6), mx_host=HELO, tracking_host="track.postwire.test")
OUR_SPF = f"v=spf1 a:{HELO} ~all"
KEY = generate_dkim_key()
OTHER_KEY = generate_dkim_key()


def publish(dns: LoopbackDns, domain: str, *, spf: str | None = OUR_SPF, mx: bool = True) -> None:
    """The records ``dns_records`` tells a user to publish."""
    if spf is not None:
        dns.txt(domain, spf)
    dns.txt(f"{KEY.selector}._domainkey.{domain}", f"v=DKIM1; k=rsa; p={KEY.public_b64}")
    dns.txt(f"_dmarc.{domain}", "v=DMARC1; p=none")
    if mx:
        dns.mx(domain, HELO)
    dns.cname(f"track.{domain}", "track.postwire.test")


@pytest.fixture(scope="module")
def dns() -> Iterator[LoopbackDns]:
    server = LoopbackDns().start()
    server.a(HELO, IP4)
    server.aaaa(HELO, IP6)
    publish(server, "good.example")
    # Everything present, nothing ours.
    server.txt("wrong.example", "v=spf1 ip4:198.51.100.0/24 -all")
    server.txt(f"{KEY.selector}._domainkey.wrong.example", f"v=DKIM1; p={OTHER_KEY.public_b64}")
    server.txt("_dmarc.wrong.example", "p=reject")
    server.mx("wrong.example", "mx.elsewhere.example", 5)
    server.cname("track.wrong.example", "track.elsewhere.example")
    publish(server, "softall.example", spf="v=spf1 ~all")
    publish(server, "nomx.example", mx=False)
    server.a("bare.example", "198.51.100.1")  # the name exists, none of the records do
    publish(server, "two.example")
    server.txt("two.example", "v=spf1 ip4:192.0.2.0/24 -all")
    # include chain and redirect
    publish(server, "chain.example", spf="v=spf1 include:_spf.chain.example -all")
    server.txt("_spf.chain.example", "v=spf1 include:_ips.chain.example ?all")
    server.txt("_ips.chain.example", "v=spf1 ip4:192.0.2.0/24 ip6:2001:db8::/32 -all")
    publish(server, "redirect.example", spf="v=spf1 redirect=_spf.chain.example")
    publish(server, "loop.example", spf="v=spf1 include:loop.example -all")
    # ten DNS-querying terms are allowed, the eleventh is a permerror
    nine = " ".join(f"include:n{i}.limit.example" for i in range(9))
    for i in range(10):
        server.txt(f"n{i}.limit.example", "v=spf1 -all")
    publish(server, "ten.example", spf=f"v=spf1 {nine} a:{HELO} -all")
    publish(server, "eleven.example", spf=f"v=spf1 {nine} include:n9.limit.example a:{HELO} -all")
    # mechanisms resolved by the evaluator
    server.mx("mxhost.example", HELO)
    server.txt("mxhost.example", "v=spf1 mx -all")
    server.mx("mxnet.example", "mx.mxnet.example")
    server.a("mx.mxnet.example", "192.0.2.1")
    server.txt("mxnet.example", "v=spf1 mx/24 -all")
    server.txt("exists.example", "v=spf1 exists:%{i}._ip.exists.example -all")
    server.a(f"{IP4}._ip.exists.example", "127.0.0.2")
    server.txt("void2.example", f"v=spf1 a:nx1.example a:nx2.example a:{HELO} -all")
    server.txt("void3.example", f"v=spf1 a:nx1.example a:nx2.example a:nx3.example a:{HELO} -all")
    server.txt("noinclude.example", "v=spf1 include:nothing.example -all")
    yield server
    server.stop()


async def check(dns: LoopbackDns, domain: str) -> dict[str, RecordCheck]:
    return await check_domain(domain, KEY.selector, KEY.public_b64, EXPECTED, [dns.nameserver])


async def test_the_published_records_are_all_ok_and_the_domain_verified(dns: LoopbackDns) -> None:
    checks = await check(dns, "good.example")
    assert checks == {
        "spf": RecordCheck("ok", (OUR_SPF,)),
        # the key is published as several strings (over 255 bytes) and read back joined
        "dkim": RecordCheck("ok", (f"v=DKIM1; k=rsa; p={KEY.public_b64}",)),
        "dmarc": RecordCheck("ok", ("v=DMARC1; p=none",)),
        "mx": RecordCheck("ok", (f"10 {HELO}",)),
        "tracking": RecordCheck("ok", ("track.postwire.test",)),
    }
    assert domain_state(statuses(checks)) == "verified"


async def test_records_that_are_not_ours_are_wrong_and_show_what_is_there(
    dns: LoopbackDns,
) -> None:
    checks = await check(dns, "wrong.example")
    assert checks == {
        "spf": RecordCheck(
            "wrong",
            ("v=spf1 ip4:198.51.100.0/24 -all",),
            f"{IP4} gets fail; {IP6} gets fail",
        ),
        "dkim": RecordCheck("wrong", (f"v=DKIM1; p={OTHER_KEY.public_b64}",), "another key"),
        "dmarc": RecordCheck("wrong", ("p=reject",), "no record starts with v=DMARC1"),
        "mx": RecordCheck("wrong", ("5 mx.elsewhere.example",), f"no MX host is {HELO}"),
        "tracking": RecordCheck(
            "wrong", ("track.elsewhere.example",), "points elsewhere than track.postwire.test"
        ),
    }
    assert domain_state(statuses(checks)) == "unverified"


async def test_a_softfail_fallback_is_not_a_pass(dns: LoopbackDns) -> None:
    checks = await check(dns, "softall.example")
    assert checks["spf"] == RecordCheck(
        "wrong", ("v=spf1 ~all",), f"{IP4} gets softfail; {IP6} gets softfail"
    )


@pytest.mark.parametrize("domain", ["missing.example", "bare.example"])
async def test_absent_records_are_missing(dns: LoopbackDns, domain: str) -> None:
    checks = await check(dns, domain)  # NXDOMAIN, and a name with only an A record
    assert checks == dict.fromkeys(checks, RecordCheck("missing"))
    assert list(checks) == ["spf", "dkim", "dmarc", "mx", "tracking"]
    assert domain_state(statuses(checks)) == "unverified"


async def test_without_dmarc_the_domain_is_still_verified(dns: LoopbackDns) -> None:
    checks = await check(dns, "good.example")
    without_dmarc = statuses(checks) | {"dmarc": "missing"}
    assert domain_state(without_dmarc) == "verified"


async def test_spf_and_dkim_without_mx_make_the_domain_usable(dns: LoopbackDns) -> None:
    checks = await check(dns, "nomx.example")
    assert (checks["spf"].status, checks["dkim"].status, checks["mx"]) == (
        "ok",
        "ok",
        RecordCheck("missing"),
    )
    assert domain_state(statuses(checks)) == "usable"


async def test_two_spf_records_are_a_permerror(dns: LoopbackDns) -> None:
    checks = await check(dns, "two.example")
    assert checks["spf"] == RecordCheck(
        "wrong",
        (OUR_SPF, "v=spf1 ip4:192.0.2.0/24 -all"),
        "permerror: multiple SPF records",
    )


@pytest.mark.parametrize("domain", ["chain.example", "redirect.example", "ten.example"])
async def test_spf_passes_through_includes_and_redirect(dns: LoopbackDns, domain: str) -> None:
    assert (await check(dns, domain))["spf"].status == "ok"


@pytest.mark.parametrize("domain", ["loop.example", "eleven.example"])
async def test_more_than_ten_lookups_are_a_permerror(dns: LoopbackDns, domain: str) -> None:
    spf = (await check(dns, domain))["spf"]
    assert (spf.status, spf.detail) == ("wrong", "permerror: too many DNS lookups (more than 10)")


@pytest.mark.parametrize(
    ("ip", "domain", "result"),
    [
        (IP4, "mxhost.example", SpfResult("pass")),
        (IP6, "mxhost.example", SpfResult("pass")),
        (IP4, "mxnet.example", SpfResult("pass")),  # mx/24 covers the /24 of the MX host
        (IP6, "mxnet.example", SpfResult("fail")),
        (IP4, "exists.example", SpfResult("pass")),
        (IP6, "exists.example", SpfResult("fail")),
        (IP4, "void2.example", SpfResult("pass")),
        (IP4, "void3.example", SpfResult("permerror", "too many void DNS lookups (more than 2)")),
        (
            IP4,
            "noinclude.example",
            SpfResult("permerror", "include:nothing.example has no SPF record"),
        ),
        (IP4, "missing.example", SpfResult("none")),
    ],
)
async def test_check_host(dns: LoopbackDns, ip: str, domain: str, result: SpfResult) -> None:
    assert await check_host(make_resolver([dns.nameserver]), ip, domain) == result


class _ServFail(BaseResolver):  # type: ignore[misc]
    def resolve(self, request: DNSRecord, handler: Any) -> DNSRecord:
        reply = request.reply()
        reply.header.rcode = RCODE.SERVFAIL
        return reply


async def test_a_servfail_is_pending_not_missing() -> None:
    quiet = DNSLogger(log="-request,-reply,-truncated,-error,-recv,-send,-data", prefix=False)
    server = DNSServer(_ServFail(), port=0, address="127.0.0.1", logger=quiet)
    server.start_thread()
    try:
        nameserver = f"127.0.0.1:{server.server.server_address[1]}"
        checks = await check_domain("good.example", "s", "k", EXPECTED, [nameserver])
    finally:
        server.stop()
    assert {c.status for c in checks.values()} == {"pending"}
    assert (
        checks["mx"].detail
        == "DNS lookup failed: MX good.example: no nameserver answered (SERVFAIL)"
    )
    assert statuses(checks, {"spf": "ok", "dkim": "ok", "mx": "ok"})["mx"] == "ok"


async def test_a_silent_nameserver_is_pending_within_the_deadline() -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as silent:
        silent.bind(("127.0.0.1", 0))
        nameserver = f"127.0.0.1:{silent.getsockname()[1]}"
        checks = await check_domain(
            "good.example", "s", "k", EXPECTED, [nameserver], seconds_per_record=0.5
        )
    assert checks == dict.fromkeys(
        checks, RecordCheck("pending", detail="DNS lookups took over 0.5 s")
    )
