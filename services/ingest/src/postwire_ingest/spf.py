"""SPF as a receiver evaluates it: RFC 7208's check_host() for one IP and a sender domain,
with the limits of 10 DNS-querying terms and 2 void lookups (both counted across every
include and redirect of one evaluation).

::

    check_host(ip, domain) ── TXT <domain> ── one "v=spf1" record ── parse_spf → terms
        each term in order: ip4/ip6/all match here; include, a, mx, exists (and ptr)
        count a lookup and query DNS (macros expanded first); the first match gives
        its qualifier's result ── none matched: redirect=, else "neutral"
        → SpfResult(pass | fail | softfail | neutral | none | permerror | temperror)

It is our own evaluator over dnspython because pyspf (last release 2.0.14, January 2020)
is synchronous and takes its DNS through a module-global hook (no per-call nameservers on
our event loop), and checkdmarc validates records and counts their lookups but does not
evaluate them for an IP. Left out: ``ptr`` never matches (RFC 7208 5.5: SHOULD NOT be
used), ``exp=`` is ignored (it only explains a fail), and macros see the sender
``postmaster@<domain>`` and HELO ``<domain>``. Whether the result makes a domain's SPF
record ours is ``dns_check``'s judgement.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass
from typing import Any, Literal

import dns.asyncresolver
import dns.exception
import dns.name

from postwire_ingest.dns_query import DnsFailure, query, txt

__all__ = [
    "MAX_LOOKUPS",
    "MAX_VOID_LOOKUPS",
    "PermError",
    "Result",
    "SpfResult",
    "Term",
    "check_host",
    "expand",
    "parse_spf",
    "spf_records",
]

IP = ipaddress.IPv4Address | ipaddress.IPv6Address
Result = Literal["pass", "fail", "softfail", "neutral", "none", "permerror", "temperror"]

MAX_LOOKUPS = 10  # RFC 7208 4.6.4
MAX_VOID_LOOKUPS = 2


@dataclass(frozen=True, slots=True)
class SpfResult:
    result: Result
    reason: str = ""


_QUALIFIERS: dict[str, Result] = {"+": "pass", "-": "fail", "~": "softfail", "?": "neutral"}
# Whether each mechanism other than ip4/ip6 takes a domain-spec after ":".
_DOMAIN_ARG = {
    "all": "never",
    "include": "required",
    "exists": "required",
    "ptr": "optional",
    "a": "optional",
    "mx": "optional",
}
_MODIFIER = re.compile(r"([A-Za-z][A-Za-z0-9_.-]*)=(.*)")
_DUAL_CIDR = re.compile(r"(?:/(\d{1,2}))?(?://(\d{1,3}))?")
_MACRO = re.compile(r"%(?:\{([slodiphv])(\d*)(r?)([.+,/_=-]*)\}|(.))", re.IGNORECASE)


class PermError(Exception):
    """An SPF record a receiver cannot evaluate (RFC 7208 2.6.7): bad syntax, a limit."""


@dataclass(frozen=True, slots=True)
class Term:
    qualifier: str  # "+", "-", "~", "?"; "" for a modifier
    name: str  # mechanism or modifier name, lower case
    value: str  # domain-spec, address or modifier value ("" when absent)
    cidr4: int = 32
    cidr6: int = 128


def spf_records(txt: list[str]) -> list[str]:
    """The TXT values that are SPF records (RFC 7208 4.5: "v=spf1" then space or end)."""
    return [t for t in txt if t.lower() == "v=spf1" or t.lower().startswith("v=spf1 ")]


def parse_spf(record: str) -> list[Term]:
    """Terms of one record; a syntax error anywhere is a permerror (RFC 7208 4.6)."""
    terms: list[Term] = []
    for word in record.split()[1:]:
        if modifier := _MODIFIER.fullmatch(word):
            name = modifier[1].lower()
            if name in {"redirect", "exp"} and any(t.name == name for t in terms):
                raise PermError(f"{name}= given twice")
            terms.append(Term("", name, modifier[2]))
        else:
            terms.append(_mechanism(word))
    return terms


def _mechanism(word: str) -> Term:
    qualifier = word[0] if word[0] in _QUALIFIERS else "+"
    name, colon, value = word.removeprefix(qualifier).partition(":")
    name, slash, cidr = name.partition("/")  # "a/24", "mx//64": no domain, a prefix
    name = name.lower()
    if name in {"ip4", "ip6"} and colon and not slash:
        try:
            network = ipaddress.ip_network(value, strict=False)
        except ValueError:
            raise PermError(f"bad address in {word!r}") from None
        if network.version != int(name[-1]):
            raise PermError(f"bad address in {word!r}")
        return Term(qualifier, name, str(network))
    if name in {"a", "mx"} and colon and not slash:
        value, slash, cidr = value.partition("/")
    prefixes = _DUAL_CIDR.fullmatch(slash + cidr)
    domain = _DOMAIN_ARG.get(name)
    if (
        domain is None
        or (colon and (not value or domain == "never"))
        or (not colon and domain == "required")
        or (slash and name not in {"a", "mx"})
        or "/" in value
        or prefixes is None
    ):
        raise PermError(f"bad term {word!r}")
    cidr4, cidr6 = int(prefixes[1] or 32), int(prefixes[2] or 128)
    if cidr4 > 32 or cidr6 > 128:
        raise PermError(f"bad prefix length in {word!r}")
    return Term(qualifier, name, value, cidr4, cidr6)


def expand(spec: str, ip: IP, sender_domain: str, domain: str) -> str:
    """A domain-spec with its macros (RFC 7208 7) expanded, then checked as a name."""
    if ip.version == 4:
        i, v = str(ip), "in-addr"
    else:
        i, v = ".".join(ip.exploded.replace(":", "")), "ip6"
    values = {
        "s": f"postmaster@{sender_domain}",
        "l": "postmaster",
        "o": sender_domain,
        "d": domain,
        "i": i,
        "p": "unknown",
        "v": v,
        "h": sender_domain,
    }

    def one(macro: re.Match[str]) -> str:
        if macro[5] is not None:
            escapes = {"%": "%", "_": " ", "-": "%20"}
            if macro[5] not in escapes:
                raise PermError(f"bad macro in {spec!r}")
            return escapes[macro[5]]
        parts = re.split(f"[{re.escape(macro[4] or '.')}]", values[macro[1].lower()])
        if macro[3]:
            parts.reverse()
        if macro[2]:
            if int(macro[2]) == 0:
                raise PermError(f"bad macro in {spec!r}")
            parts = parts[-int(macro[2]) :]
        return ".".join(parts)

    name = _MACRO.sub(one, spec).rstrip(".")
    try:
        dns.name.from_text(name)
    except dns.exception.DNSException:
        raise PermError(f"bad domain {name!r}") from None
    if "." not in name or name.rsplit(".", 1)[1].isdigit():
        raise PermError(f"bad domain {name!r}")
    return name


class _Evaluation:
    """One check_host() run: the lookup and void counters span all includes."""

    def __init__(self, resolver: dns.asyncresolver.Resolver, ip: IP, sender_domain: str):
        self.resolver, self.ip, self.sender_domain = resolver, ip, sender_domain
        self.lookups = self.voids = 0

    def _count(self) -> None:
        self.lookups += 1
        if self.lookups > MAX_LOOKUPS:
            raise PermError(f"too many DNS lookups (more than {MAX_LOOKUPS})")

    async def _void_aware(self, name: str, rdtype: str) -> list[Any]:
        found = await query(self.resolver, name, rdtype)
        if not found:
            self.voids += 1
            if self.voids > MAX_VOID_LOOKUPS:
                raise PermError(f"too many void DNS lookups (more than {MAX_VOID_LOOKUPS})")
        return found

    async def _in_addresses(self, host: str, term: Term, void_counts: bool) -> bool:
        kind = "A" if self.ip.version == 4 else "AAAA"
        records = await (
            self._void_aware(host, kind) if void_counts else query(self.resolver, host, kind)
        )
        prefix = term.cidr4 if self.ip.version == 4 else term.cidr6
        return any(
            self.ip in ipaddress.ip_network(f"{r.address}/{prefix}", strict=False) for r in records
        )

    async def _matches(self, term: Term, domain: str) -> bool:
        if term.name == "all":
            return True
        if term.name in {"ip4", "ip6"}:
            return self.ip in ipaddress.ip_network(term.value)
        self._count()  # include, a, mx, ptr, exists
        target = expand(term.value or domain, self.ip, self.sender_domain, domain)
        if term.name == "include":
            result = await self.check_host(target)
            if result == "none":  # a nested permerror has been raised already
                raise PermError(f"include:{target} has no SPF record")
            return result == "pass"
        if term.name == "a":
            return await self._in_addresses(target, term, void_counts=True)
        if term.name == "mx":
            hosts = await self._void_aware(target, "MX")
            if len(hosts) > MAX_LOOKUPS:
                raise PermError(f"mx:{target} has more than {MAX_LOOKUPS} MX records")
            for mx in hosts:
                if await self._in_addresses(mx.exchange.to_text(), term, void_counts=False):
                    return True
            return False
        if term.name == "exists":
            return bool(await self._void_aware(target, "A"))
        return False  # ptr: counted, never trusted

    async def check_host(self, domain: str) -> Result:
        records = spf_records(await txt(self.resolver, domain))
        if not records:
            return "none"
        if len(records) > 1:
            raise PermError(f"multiple SPF records at {domain}")
        terms = parse_spf(records[0])
        for term in terms:
            if term.qualifier and await self._matches(term, domain):
                return _QUALIFIERS[term.qualifier]
        redirect = next((t.value for t in terms if t.name == "redirect"), None)
        if redirect is None:
            return "neutral"
        self._count()
        result = await self.check_host(expand(redirect, self.ip, self.sender_domain, domain))
        if result == "none":
            raise PermError(f"redirect={redirect} has no SPF record")
        return result


async def check_host(resolver: dns.asyncresolver.Resolver, ip: str, domain: str) -> SpfResult:
    """The SPF result a receiver gets for mail from ``ip`` with a sender at ``domain``."""
    try:
        evaluation = _Evaluation(resolver, ipaddress.ip_address(ip), domain)
        return SpfResult(await evaluation.check_host(domain))
    except PermError as exc:
        return SpfResult("permerror", str(exc))
    except DnsFailure as exc:
        return SpfResult("temperror", str(exc))
