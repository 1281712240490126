"""DKIM checks of delivered mail: dkimpy's DNS lookups through the loopback DNS server,
and publishing a test domain's key there."""

from __future__ import annotations

import dns.resolver

from postwire_testkit.api import Tenant, envelope
from postwire_testkit.dns import LoopbackDns


def dns_lookup(loopback: LoopbackDns) -> object:
    """dkimpy's dnsfunc, asking the loopback DNS server over the network."""
    resolver = dns.resolver.Resolver(configure=False)
    resolver.nameservers = [loopback.nameserver.split(":")[0]]
    resolver.port = loopback.port

    def lookup(name: bytes, timeout: int = 5) -> bytes | None:
        try:
            answer = resolver.resolve(name.decode().rstrip("."), "TXT", lifetime=timeout)
        except dns.resolver.NXDOMAIN:
            return None
        return b"".join(answer[0].strings)

    return lookup


async def publish_dkim(tenant: Tenant, dns_server: LoopbackDns) -> str:
    answer = await tenant.client("ingest").get(f"/v1/domains/{tenant.domain}")
    records = envelope(answer)["Result"]["records"]
    [record] = [r for r in records if r["purpose"] == "dkim"]
    dns_server.txt(record["host"], record["value"])
    return str(record["host"])
