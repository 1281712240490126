"""MX routing and SMTP hand-over against a real DNS server and SMTP server on loopback."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from postwire_common.config import Settings
from postwire_common.schemas import DeliveryStatus
from postwire_delivery.results import Outcome
from postwire_delivery.routing import NoRoute, Router
from postwire_delivery.smtp import SmtpPool
from postwire_testkit.dns import LoopbackDns
from postwire_testkit.smtp import SmtpSink


@pytest.fixture(scope="module")
def dns() -> Iterator[LoopbackDns]:
    server = LoopbackDns().start()
    server.mx("multi.example", "backup.multi.example", 20)
    server.mx("multi.example", "primary.multi.example", 10)
    server.a("primary.multi.example", "127.0.0.2")
    server.a("backup.multi.example", "127.0.0.3")
    server.a("a-only.example", "127.0.0.4")
    server.null_mx("nomail.example")
    server.mail_domain("public.example", "93.184.216.34")
    yield server
    server.stop()


def settings(dns: LoopbackDns, **extra: object) -> Settings:
    return Settings(
        dns_nameservers=[dns.nameserver],
        allow_private_targets=extra.pop("allow_private_targets", True),
        delivery_port=2525,
        **extra,  # type: ignore[arg-type]
    )


async def test_mx_hosts_in_preference_order(dns: LoopbackDns) -> None:
    targets = await Router(settings(dns)).targets("ann@multi.example")
    assert [(t.host, t.ip, t.port) for t in targets] == [
        ("primary.multi.example", "127.0.0.2", 2525),
        ("backup.multi.example", "127.0.0.3", 2525),
    ]


async def test_domain_without_mx_falls_back_to_its_address(dns: LoopbackDns) -> None:
    targets = await Router(settings(dns)).targets("ann@a-only.example")
    assert [(t.host, t.ip) for t in targets] == [("a-only.example", "127.0.0.4")]


@pytest.mark.parametrize(("domain", "code"), [("nomail.example", 556), ("missing.example", 550)])
async def test_null_mx_and_nxdomain_are_invalid_addresses(
    dns: LoopbackDns, domain: str, code: int
) -> None:
    with pytest.raises(NoRoute) as caught:
        await Router(settings(dns)).targets(f"ann@{domain}")
    assert caught.value.result.outcome is Outcome.HARD
    assert caught.value.result.status is DeliveryStatus.INVALID_ADDRESS
    assert caught.value.result.undeliverable  # an invalid event, not failed
    assert caught.value.result.code == code


async def test_mx_in_private_ranges_is_refused_unless_allowed(dns: LoopbackDns) -> None:
    with pytest.raises(NoRoute) as caught:
        await Router(settings(dns, allow_private_targets=False)).targets("ann@multi.example")
    assert caught.value.result.outcome is Outcome.HARD
    assert "not at public addresses" in caught.value.result.message
    public = await Router(settings(dns, allow_private_targets=False)).targets("x@public.example")
    assert [t.ip for t in public] == ["93.184.216.34"]


async def test_refused_mx_result_names_no_host_or_address(dns: LoopbackDns) -> None:
    """The result reaches the tenant (err_msg): it must not say where names point."""
    with pytest.raises(NoRoute) as caught:
        await Router(settings(dns, allow_private_targets=False)).targets("ann@multi.example")
    message = caught.value.result.message
    assert message == "the mail servers of multi.example are not at public addresses"
    for leak in ("127.0.0", "primary.multi.example", "backup.multi.example"):
        assert leak not in message


@pytest.mark.parametrize("relay", ["127.0.0.1:2526", "localhost:2526"])
async def test_relay_is_trusted_in_private_ranges(dns: LoopbackDns, relay: str) -> None:
    """The relay is operator configuration: no private-range check, whatever MX may do."""
    router = Router(settings(dns, delivery_relay=relay, allow_private_targets=False))
    targets = await router.targets("ann@multi.example")
    assert [t.port for t in targets] == [2526]
    assert {t.ip for t in targets} <= {"127.0.0.1", "::1"}


async def test_relay_replaces_mx_lookup(dns: LoopbackDns) -> None:
    router = Router(settings(dns, delivery_relay="127.0.0.1:2526"))
    targets = await router.targets("ann@multi.example")
    assert [(t.ip, t.port) for t in targets] == [("127.0.0.1", 2526)]


async def test_pool_reuses_one_session_for_consecutive_messages(dns: LoopbackDns) -> None:
    sink = SmtpSink().start()
    pool = SmtpPool("postwire.test", per_host=2, timeout=5)
    try:
        router = Router(settings(dns, delivery_relay=f"127.0.0.1:{sink.port}"))
        (target,) = await router.targets("ann@multi.example")
        for n in range(5):
            raw = f"Subject: n{n}\r\n\r\nbody {n}\r\n".encode()
            result = await pool.send(target, "news@shop.example", f"r{n}@multi.example", raw)
            assert result.outcome is Outcome.DELIVERED
            assert result.code == 250
        sink.reject("gone@multi.example")
        refused = await pool.send(target, "news@shop.example", "gone@multi.example", b"x\r\n")
        assert refused.status is DeliveryStatus.INVALID_ADDRESS
        after = await pool.send(target, "news@shop.example", "r9@multi.example", b"y\r\n")
        assert after.outcome is Outcome.DELIVERED
    finally:
        await pool.close()
        sink.stop()
    assert [r.rcpt_tos for r in sink.received] == [
        [f"r{n}@multi.example"] for n in (0, 1, 2, 3, 4, 9)
    ]
    assert len({r.peer_port for r in sink.received}) == 1  # one TCP session for all of them
