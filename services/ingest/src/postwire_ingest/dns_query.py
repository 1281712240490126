"""One DNS query as the domain checks ask it: a resolver per check, and an answer that is
either the records (``[]`` for NXDOMAIN or no record of the type) or a :class:`DnsFailure`.

A failure (SERVFAIL, refused, timeout) decides nothing: ``dns_check`` turns it into a
``pending`` record, ``spf`` into a ``temperror``. Each check makes a resolver of its own,
cache included: a user who just fixed a record and asks again must not get the old answer.
"""

from __future__ import annotations

from typing import Any

import dns.asyncresolver
import dns.exception
import dns.resolver

from postwire_common import dns_resolver

__all__ = ["QUERY_TIMEOUT", "DnsFailure", "make_resolver", "query", "txt"]

QUERY_TIMEOUT = 3.0  # one query, all nameservers tried


class DnsFailure(Exception):
    """A query got no usable answer (SERVFAIL, refused, timeout): nothing is decided."""


def make_resolver(nameservers: list[str]) -> dns.asyncresolver.Resolver:
    """Short timeouts, and a cache that lives only as long as this resolver (a user who
    just fixed a record must not get the old answer)."""
    return dns_resolver.make_resolver(
        nameservers, cache_size=1_000, timeout=2.0, lifetime=QUERY_TIMEOUT
    )


async def query(resolver: dns.asyncresolver.Resolver, name: str, rdtype: str) -> list[Any]:
    """The records, [] for NXDOMAIN or no record of the type; other failures raise."""
    try:
        answer = await resolver.resolve(name, rdtype)
    except (dns.resolver.NXDOMAIN, dns.resolver.NoAnswer):
        return []
    except dns.exception.Timeout:
        raise DnsFailure(f"{rdtype} {name}: timed out") from None
    except dns.resolver.NoNameservers:
        raise DnsFailure(f"{rdtype} {name}: no nameserver answered (SERVFAIL)") from None
    except dns.exception.DNSException as exc:
        raise DnsFailure(f"{rdtype} {name}: {type(exc).__name__}") from None
    return list(answer)


async def txt(resolver: dns.asyncresolver.Resolver, name: str) -> list[str]:
    """The TXT values at ``name``, each record's strings joined into one value."""
    # A record's strings are one value (RFC 7208 3.3, RFC 6376 3.6.2.2): joined, no space.
    records = await query(resolver, name, "TXT")
    return [b"".join(r.strings).decode("utf-8", "replace") for r in records]
