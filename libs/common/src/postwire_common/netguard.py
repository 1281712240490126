"""Which network targets user-supplied names may reach (SSRF defence).

Webhook URLs and MX hosts of recipients' domains are resolved to IP addresses and
refused when any of them is loopback, private, link-local, multicast or otherwise not
globally routable (each caller has its own setting to allow private ranges; the
operator's relay is trusted as configuration). Callers connect to the address that was
checked, so a second DNS answer cannot swap it (DNS rebinding).

A refusal names only the host the user gave, never the address it resolved to: the
answer would otherwise tell a tenant what internal names resolve to (a DNS oracle).
``ForbiddenTarget.detail`` keeps the address for the operator's logs.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from collections.abc import Awaitable, Callable

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
Lookup = Callable[[str, int], Awaitable[list[str]]]


class ForbiddenTarget(Exception):
    """The target resolves to an address user-supplied names may not reach."""

    def __init__(self, host: str, detail: str) -> None:
        super().__init__(f"{host} does not resolve to a public address")
        self.host = host
        self.detail = detail  # names the address: for logs, not for answers


# Ranges Python 3.11's ``is_global`` calls public although no user-given name should
# lead there: local-use NAT64 (RFC 8215), deprecated site-local, and IPv4-mapped and
# IPv4-translated (SIIT) forms, which reach IPv4 hosts by a path nobody publishes.
_NEVER = tuple(
    ipaddress.ip_network(net)
    for net in ("64:ff9b:1::/48", "fec0::/10", "::ffff:0:0/96", "::ffff:0:0:0/96")
)
_NAT64 = ipaddress.ip_network("64:ff9b::/96")
_IPV4_COMPATIBLE = ipaddress.ip_network("::/96")


def _embedded_ipv4(address: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    """The IPv4 address an IPv6 address leads to: 6to4, Teredo, NAT64, compatible."""
    if address.sixtofour:
        return address.sixtofour
    if address.teredo:
        return address.teredo[1]
    if address in _NAT64 or (address in _IPV4_COMPATIBLE and int(address) > 1):
        return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    return None


def _global(address: IPAddress) -> bool:
    return address.is_global and not address.is_multicast


def is_public(ip: str) -> bool:
    address: IPAddress = ipaddress.ip_address(ip)
    if isinstance(address, ipaddress.IPv6Address):
        if any(address in net for net in _NEVER):
            return False
        embedded = _embedded_ipv4(address)
        if embedded is not None and not _global(embedded):
            return False
    return _global(address)


def check_ip(ip: str, *, allow_private: bool, host: str | None = None) -> str:
    if not allow_private and not is_public(ip):
        raise ForbiddenTarget(host or ip, f"{host or ip}: {ip} is not a public address")
    return ip


async def system_lookup(host: str, port: int) -> list[str]:
    """The addresses of ``host`` from the system resolver (``getaddrinfo``)."""
    loop = asyncio.get_running_loop()
    try:
        infos = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except socket.gaierror as exc:
        raise ForbiddenTarget(host, f"{host} does not resolve: {exc.strerror}") from None
    except UnicodeError:  # a label IDNA cannot encode (URL checks refuse these first)
        raise ForbiddenTarget(host, f"{host} is not a valid host name") from None
    return [str(info[4][0]) for info in infos]


async def resolve_checked(
    host: str, port: int, *, allow_private: bool, lookup: Lookup = system_lookup
) -> list[str]:
    """Resolve ``host`` and return its addresses, all of which must be allowed."""
    try:
        ipaddress.ip_address(host)
        addresses = [host]
    except ValueError:
        addresses = list(dict.fromkeys(await lookup(host, port)))
    if not addresses:
        raise ForbiddenTarget(host, f"{host} has no addresses")
    for ip in addresses:
        check_ip(ip, allow_private=allow_private, host=host)
    return addresses
