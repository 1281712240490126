"""An authoritative DNS server on loopback for the zones a test defines.

Unknown names answer NXDOMAIN; a known name asked for a type it lacks answers NOERROR
with no records (so MX lookups fall back to A, as RFC 5321 says).
"""

from __future__ import annotations

import threading
from collections import defaultdict
from typing import Any

import dns.asyncresolver
import dns.exception
import dns.nameserver
from dnslib import AAAA, CNAME, MX, QTYPE, RCODE, RR, TXT, A, DNSRecord
from dnslib.server import BaseResolver, DNSLogger, DNSServer


class _Zone(BaseResolver):  # type: ignore[misc]
    def __init__(self) -> None:
        self.records: dict[str, list[RR]] = defaultdict(list)
        self.lock = threading.Lock()
        self.queries: list[tuple[str, str]] = []

    def resolve(self, request: DNSRecord, handler: Any) -> DNSRecord:
        reply = request.reply()
        name = str(request.q.qname).lower().rstrip(".")
        qtype = QTYPE[request.q.qtype]
        with self.lock:
            self.queries.append((name, qtype))
            found = list(self.records.get(name, ()))
        if not found:
            reply.header.rcode = RCODE.NXDOMAIN
            return reply
        for rr in found:
            if QTYPE[rr.rtype] == qtype:
                reply.add_answer(rr)
        return reply


class LoopbackDns:
    def __init__(self, host: str = "127.0.0.1") -> None:
        self._zone = _Zone()
        quiet = DNSLogger(log="-request,-reply,-truncated,-error,-recv,-send,-data", prefix=False)
        self._server = DNSServer(self._zone, port=0, address=host, logger=quiet)
        self.host = host

    @property
    def port(self) -> int:
        return int(self._server.server.server_address[1])

    @property
    def nameserver(self) -> str:
        """The value for ``POSTWIRE_DNS_NAMESERVERS``."""
        return f"{self.host}:{self.port}"

    @property
    def queries(self) -> list[tuple[str, str]]:
        return list(self._zone.queries)

    async def lookup(self, host: str, port: int = 0) -> list[str]:
        """A and AAAA of ``host`` from this server (a ``netguard.Lookup``; port unused)."""
        resolver = dns.asyncresolver.Resolver(configure=False)
        resolver.nameservers = [dns.nameserver.Do53Nameserver(self.host, self.port)]
        found: list[str] = []
        for kind in ("A", "AAAA"):
            try:
                answer = await resolver.resolve(host, kind)
            except dns.exception.DNSException:
                continue
            found.extend(str(r.address) for r in answer)
        return found

    def start(self) -> LoopbackDns:
        self._server.start_thread()
        return self

    def stop(self) -> None:
        self._server.stop()

    def _add(self, name: str, rtype: int, rdata: Any, ttl: int = 60) -> None:
        key = name.lower().rstrip(".")
        with self._zone.lock:
            self._zone.records[key].append(RR(key, rtype, rdata=rdata, ttl=ttl))

    def remove(self, name: str, rtype: str | None = None) -> None:
        """Drop ``name``'s records (of one type, or all)."""
        key = name.lower().rstrip(".")
        with self._zone.lock:
            kept = [
                rr for rr in self._zone.records.get(key, []) if rtype and QTYPE[rr.rtype] != rtype
            ]
            if kept:
                self._zone.records[key] = kept
            else:
                self._zone.records.pop(key, None)

    def a(self, name: str, ip: str) -> None:
        self._add(name, QTYPE.A, A(ip))

    def aaaa(self, name: str, ip: str) -> None:
        self._add(name, QTYPE.AAAA, AAAA(ip))

    def mx(self, domain: str, host: str, preference: int = 10) -> None:
        self._add(domain, QTYPE.MX, MX(host, preference))

    def null_mx(self, domain: str) -> None:
        self._add(domain, QTYPE.MX, MX(".", 0))

    def txt(self, name: str, value: str) -> None:
        """A TXT record; values over 255 bytes (a DKIM key) go as several strings, as
        zone files publish them and receivers join them."""
        raw = value.encode()
        self._add(name, QTYPE.TXT, TXT([raw[i : i + 255] for i in range(0, len(raw), 255)]))

    def cname(self, name: str, target: str) -> None:
        self._add(name, QTYPE.CNAME, CNAME(target))

    def mail_domain(self, domain: str, ip: str = "127.0.0.1") -> None:
        """``domain`` MX -> ``mx.<domain>`` A -> ``ip``."""
        self.mx(domain, f"mx.{domain}")
        self.a(f"mx.{domain}", ip)
