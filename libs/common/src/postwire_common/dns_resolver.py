"""The DNS resolver every service builds from ``POSTWIRE_DNS_NAMESERVERS``."""

from __future__ import annotations

import dns.asyncresolver
import dns.nameserver
import dns.resolver

from postwire_common.config import split_host_port


def make_resolver(
    nameservers: list[str], *, cache_size: int, timeout: float, lifetime: float
) -> dns.asyncresolver.Resolver:
    """A resolver asking ``nameservers`` (``host`` or ``host:port`` entries; empty: the
    system's), with its own cache; ``timeout`` per server try, ``lifetime`` per query."""
    if nameservers:
        resolver = dns.asyncresolver.Resolver(configure=False)
        servers: list[str | dns.nameserver.Nameserver] = []
        for entry in nameservers:
            host, port = split_host_port(entry, default_port=53)
            servers.append(dns.nameserver.Do53Nameserver(host, port))
        resolver.nameservers = servers
    else:
        resolver = dns.asyncresolver.Resolver()
    resolver.cache = dns.resolver.LRUCache(cache_size)
    resolver.timeout = timeout
    resolver.lifetime = lifetime
    return resolver
