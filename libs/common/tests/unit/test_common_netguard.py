"""SSRF defence: which addresses user-supplied names may reach."""

from __future__ import annotations

import pytest

from postwire_common.netguard import ForbiddenTarget, check_ip, is_public, resolve_checked

NOT_PUBLIC = [
    "127.0.0.1",  # loopback
    "127.1.2.3",
    "10.0.0.1",  # RFC 1918
    "172.16.0.1",
    "172.31.255.254",
    "192.168.1.1",
    "169.254.169.254",  # link-local (cloud metadata)
    "100.64.0.1",  # CGNAT 100.64/10
    "100.127.255.254",
    "0.0.0.0",
    "255.255.255.255",
    "224.0.0.1",  # multicast
    "224.0.1.1",  # multicast with global scope
    "239.255.255.250",
    "::1",  # IPv6 loopback
    "::",
    "fc00::1",  # ULA
    "fd12:3456:789a::1",
    "fe80::1",  # link-local
    "ff02::1",  # multicast
    "ff0e::1",  # multicast with global scope
    "::ffff:10.0.0.1",  # IPv4-mapped private
    "::ffff:127.0.0.1",
    "::ffff:169.254.169.254",
    "::ffff:100.64.0.1",  # IPv4-mapped CGNAT
    "::ffff:224.0.1.1",  # IPv4-mapped multicast
    "::ffff:8.8.8.8",  # IPv4-mapped: never a published address
    "::ffff:0:10.0.0.1",  # IPv4-translated (SIIT)
    "::ffff:0:8.8.8.8",
    "64:ff9b:1::808:808",  # local-use NAT64 (RFC 8215)
    "64:ff9b:1::1",
    "fec0::1",  # deprecated site-local
    "64:ff9b::a00:1",  # NAT64 of 10.0.0.1
    "64:ff9b::a9fe:a9fe",  # NAT64 of 169.254.169.254
    "64:ff9b::7f00:1",  # NAT64 of 127.0.0.1
    "2002:a00:1::1",  # 6to4 of 10.0.0.1
    "2002:a9fe:a9fe::1",  # 6to4 of 169.254.169.254
    "2002:7f00:1::1",  # 6to4 of 127.0.0.1
    "2001:0:4136:e378:8000:63bf:f5ff:fffe",  # Teredo, client 10.0.0.1
    "2001:0:4136:e378:8000:63bf:3fff:fdd2",  # Teredo, client 192.0.2.45
    "::a00:1",  # IPv4-compatible 10.0.0.1
]
PUBLIC = [
    "8.8.8.8",
    "1.1.1.1",
    "172.32.0.1",  # just outside 172.16/12
    "100.128.0.1",  # just outside 100.64/10
    "2606:4700:4700::1111",
    "2001:4860:4860::8888",
    "2002:808:808::1",  # 6to4 of a public address
    "64:ff9b::808:808",  # NAT64 of a public address (DNS64 networks)
]


@pytest.mark.parametrize("ip", NOT_PUBLIC)
def test_not_public(ip: str) -> None:
    assert is_public(ip) is False


@pytest.mark.parametrize("ip", PUBLIC)
def test_public(ip: str) -> None:
    assert is_public(ip) is True


@pytest.mark.parametrize("ip", NOT_PUBLIC)
def test_check_ip_refuses_private_targets(ip: str) -> None:
    with pytest.raises(ForbiddenTarget):
        check_ip(ip, allow_private=False)


@pytest.mark.parametrize("ip", NOT_PUBLIC + PUBLIC)
def test_check_ip_allow_private_lets_everything_through(ip: str) -> None:
    assert check_ip(ip, allow_private=True) == ip


@pytest.mark.parametrize("ip", PUBLIC)
def test_check_ip_passes_public_targets(ip: str) -> None:
    assert check_ip(ip, allow_private=False) == ip


async def test_resolve_checked_refuses_a_private_ip_literal_without_dns() -> None:
    with pytest.raises(ForbiddenTarget):
        await resolve_checked("169.254.169.254", 80, allow_private=False)


async def test_resolve_checked_returns_an_allowed_ip_literal() -> None:
    assert await resolve_checked("127.0.0.1", 80, allow_private=True) == ["127.0.0.1"]
    assert await resolve_checked("::1", 80, allow_private=True) == ["::1"]


async def test_refusal_names_the_host_but_not_the_address() -> None:
    async def internal(host: str, port: int) -> list[str]:
        return ["93.184.216.34", "169.254.169.254"]

    with pytest.raises(ForbiddenTarget) as caught:
        await resolve_checked("meta.internal", 80, allow_private=False, lookup=internal)
    assert str(caught.value) == "meta.internal does not resolve to a public address"
    assert "169.254.169.254" in caught.value.detail  # for the operator's logs


async def test_unknown_and_private_names_are_refused_alike() -> None:
    """Whether an internal name exists must not show in the answer (a DNS oracle)."""
    with pytest.raises(ForbiddenTarget) as missing:
        await resolve_checked("nothing.invalid", 80, allow_private=False)
    with pytest.raises(ForbiddenTarget) as private:
        await resolve_checked("localhost", 80, allow_private=False)
    assert str(missing.value) == "nothing.invalid does not resolve to a public address"
    assert str(private.value) == "localhost does not resolve to a public address"


async def test_a_label_idna_cannot_encode_is_refused_not_raised() -> None:
    with pytest.raises(ForbiddenTarget):
        await resolve_checked("a" * 64 + ".example", 80, allow_private=False)
    with pytest.raises(ForbiddenTarget):
        await resolve_checked("a..example", 80, allow_private=False)
