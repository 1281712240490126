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


def is_public(ip: str) -> bool:
    address = ipaddress.ip_address(ip)
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped:
        address = address.ipv4_mapped
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
