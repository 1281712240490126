"""Where a recipient's mail goes: the relay (smart host), or the MX hosts of its domain.

MX lookup follows RFC 5321 section 5.1: MX records by preference (equal preferences in
random order), then the A/AAAA of the domain itself when it has no MX; a "null MX"
(RFC 7505) means the domain accepts no mail. Names are resolved through
``POSTWIRE_DNS_NAMESERVERS`` (or the system resolver) with a TTL-honouring cache. Every
MX address is checked against private ranges (``postwire_common.netguard``) unless
``POSTWIRE_ALLOW_PRIVATE_TARGETS`` is set, so a recipient domain cannot point delivery at
internal hosts; delivery then connects to exactly the address that was checked. A refusal
does not name the hosts or addresses (the result reaches the tenant: it would tell them
where internal names point); the log keeps them. The relay is operator configuration:
it is trusted wherever it is.
"""

from __future__ import annotations

import logging
import random
import time
from dataclasses import dataclass

import dns.asyncresolver
import dns.exception
import dns.rdatatype
import dns.resolver

from postwire_common import dns_resolver
from postwire_common.config import Settings
from postwire_common.netguard import ForbiddenTarget, check_ip, resolve_checked
from postwire_common.schemas import DeliveryStatus, TlsMode
from postwire_delivery.results import DeliveryResult, Outcome, hard, soft, undeliverable

log = logging.getLogger("postwire.delivery")


@dataclass(frozen=True, slots=True)
class Target:
    host: str  # name, for logs and TLS
    ip: str
    port: int


@dataclass(frozen=True, slots=True)
class Route:
    """Where one recipient's copy goes and how: the targets in order, the TLS mode, and,
    when a receiving domain's policy made TLS mandatory, which (named in the result)."""

    targets: list[Target]
    tls: TlsMode
    required_by: str | None = None


class NoRoute(Exception):
    """No host to try; carries the result to record (hard or soft)."""

    def __init__(self, result: DeliveryResult) -> None:
        super().__init__(result.message)
        self.result = result


def make_resolver(nameservers: list[str]) -> dns.asyncresolver.Resolver:
    return dns_resolver.make_resolver(nameservers, cache_size=50_000, timeout=4.0, lifetime=10.0)


ROUTE_CACHE_SECONDS = 30.0
ROUTE_CACHE_SIZE = 10_000


class Router:
    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self._resolver = make_resolver(settings.dns_nameservers)
        self._allow_private = settings.allow_private_targets
        self._routes: dict[str, tuple[float, list[Target] | NoRoute]] = {}

    async def targets(self, rcpt: str) -> list[Target]:
        """Addresses to try in order, or :class:`NoRoute` (both remembered briefly)."""
        domain = rcpt.rpartition("@")[2].lower()
        now = time.monotonic()
        found = self._routes.get(domain)
        if found is not None and found[0] > now:
            if isinstance(found[1], NoRoute):
                raise found[1]
            return list(found[1])
        try:
            targets = await self._targets(rcpt)
        except NoRoute as no_route:
            self._remember(domain, now, no_route)
            raise
        self._remember(domain, now, targets)
        return list(targets)

    def _remember(self, domain: str, now: float, route: list[Target] | NoRoute) -> None:
        # Every message of a domain resolves the same MX and addresses: a lookup per
        # message was 5 % of delivery's CPU even from the DNS cache. Soft failures (DNS
        # timeouts) are not remembered, so the next message asks again.
        if isinstance(route, NoRoute) and route.result.outcome is Outcome.SOFT:
            return
        if len(self._routes) >= ROUTE_CACHE_SIZE:
            self._routes.clear()
        self._routes[domain] = (now + ROUTE_CACHE_SECONDS, route)

    async def _targets(self, rcpt: str) -> list[Target]:
        relay = self._settings.relay
        if relay is not None:
            host, port = relay
            try:
                ips = await resolve_checked(host, port, allow_private=True)
            except ForbiddenTarget as exc:
                log.warning("the relay does not resolve", extra={"reason": exc.detail})
                raise NoRoute(soft("the relay does not resolve (see the delivery logs)")) from None
            return [Target(host, ip, port) for ip in ips]
        return await self._mx_targets(rcpt.rpartition("@")[2])

    async def _mx_targets(self, domain: str) -> list[Target]:
        port = self._settings.delivery_port
        hosts = await self._mx_hosts(domain)
        targets: list[Target] = []
        forbidden: list[str] = []
        for host in hosts:
            for ip in await self._addresses(host):
                try:
                    targets.append(
                        Target(host, check_ip(ip, allow_private=self._allow_private), port)
                    )
                except ForbiddenTarget:
                    forbidden.append(f"{host} ({ip})")
        if targets:
            return targets
        if forbidden:
            log.warning(
                "mail servers refused: not at public addresses",
                extra={"domain": domain, "refused": ", ".join(forbidden[:5])},
            )
            raise NoRoute(
                hard(
                    DeliveryStatus.FAILED,
                    f"the mail servers of {domain} are not at public addresses",
                )
            )
        raise NoRoute(soft(f"no address found for the mail servers of {domain}"))

    async def _mx_hosts(self, domain: str) -> list[str]:
        try:
            answer = await self._resolver.resolve(domain, dns.rdatatype.MX)
        except dns.resolver.NXDOMAIN:
            raise NoRoute(undeliverable(f"domain {domain} does not exist", 550)) from None
        except dns.resolver.NoAnswer:
            return [domain]  # no MX: the domain itself is the implicit MX (RFC 5321 5.1)
        except dns.exception.DNSException as exc:
            raise NoRoute(soft(f"MX lookup for {domain} failed: {type(exc).__name__}")) from None
        records = sorted(answer, key=lambda r: (r.preference, random.random()))
        if len(records) == 1 and records[0].exchange.to_text() == ".":
            raise NoRoute(undeliverable(f"5.1.10 {domain} accepts no mail (null MX)", 556))
        return [r.exchange.to_text().rstrip(".") for r in records if r.exchange.to_text() != "."]

    async def _addresses(self, host: str) -> list[str]:
        return await addresses(self._resolver, host)


async def addresses(resolver: dns.asyncresolver.Resolver, host: str) -> list[str]:
    """The A and AAAA addresses of ``host`` (none when it has none or DNS fails)."""
    found: list[str] = []
    for kind in (dns.rdatatype.A, dns.rdatatype.AAAA):
        try:
            answer = await resolver.resolve(host, kind)
        except dns.exception.DNSException:
            continue
        found.extend(r.address for r in answer)
    return found
