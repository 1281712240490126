"""Which network targets user-supplied names may reach (SSRF defence).

Webhook URLs, MX hosts of recipients' domains and relay hosts are resolved to IP
addresses and refused when any of them is loopback, private, link-local, multicast or
otherwise not globally routable, unless ``POSTWIRE_ALLOW_PRIVATE_TARGETS`` is set.
Callers connect to the address that was checked, so a second DNS answer cannot swap it
(DNS rebinding).
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket


class ForbiddenTarget(Exception):
    """The target resolves to an address user-supplied names may not reach."""


_NAT64 = ipaddress.ip_network("64:ff9b::/96")
_IPV4_COMPATIBLE = ipaddress.ip_network("::/96")


def _embedded_ipv4(address: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    """The IPv4 address an IPv6 address leads to: mapped, 6to4, Teredo, NAT64, compatible."""
    if address.ipv4_mapped:
        return address.ipv4_mapped
    if address.sixtofour:
        return address.sixtofour
    if address.teredo:
        return address.teredo[1]
    if address in _NAT64 or (address in _IPV4_COMPATIBLE and int(address) > 1):
        return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    return None


def is_public(ip: str) -> bool:
    address: ipaddress.IPv4Address | ipaddress.IPv6Address = ipaddress.ip_address(ip)
    if isinstance(address, ipaddress.IPv6Address):
        embedded = _embedded_ipv4(address)
        if embedded is not None and not (embedded.is_global and not embedded.is_multicast):
            return False
    return address.is_global and not address.is_multicast


def check_ip(ip: str, *, allow_private: bool) -> str:
    if not allow_private and not is_public(ip):
        raise ForbiddenTarget(f"{ip} is not a public address")
    return ip


async def resolve_checked(host: str, port: int, *, allow_private: bool) -> list[str]:
    """Resolve ``host`` and return its addresses, all of which must be allowed."""
    try:
        ipaddress.ip_address(host)
        addresses = [host]
    except ValueError:
        loop = asyncio.get_running_loop()
        try:
            infos = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM)
        except socket.gaierror as exc:
            raise ForbiddenTarget(f"{host} does not resolve: {exc.strerror}") from None
        addresses = list(dict.fromkeys(str(info[4][0]) for info in infos))
    if not addresses:
        raise ForbiddenTarget(f"{host} has no addresses")
    for ip in addresses:
        check_ip(ip, allow_private=allow_private)
    return addresses
