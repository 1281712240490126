"""The address a request came from, through the proxies the operator trusts.

``X-Forwarded-For`` is a list each proxy appends its peer to; anyone can write its left
part. So it is read from the right: starting at the connection's peer, as long as the
hop is a trusted proxy (POSTWIRE_TRUSTED_PROXIES), the address it names before it is
taken; the first address that is not a trusted proxy is the client. With no trusted
proxies the header is ignored.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def networks(proxies: Sequence[str]) -> list[Network]:
    return [ipaddress.ip_network(p, strict=False) for p in proxies]


def _trusted(address: str, trusted: Sequence[Network]) -> bool:
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    return any(ip in net for net in trusted)


def client_address(
    peer: str | None, forwarded_for: str | None, trusted: Sequence[Network]
) -> str | None:
    address = peer
    if address is None or not trusted or not forwarded_for:
        return address
    hops = [h.strip() for h in forwarded_for.split(",")]
    while hops and _trusted(address, trusted):
        named = hops.pop()
        try:
            address = str(ipaddress.ip_address(named))
        except ValueError:
            break  # garbage from a hop we trust: keep the proxy's address
    return address
