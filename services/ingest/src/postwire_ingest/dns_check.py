"""Checking a sender domain's records (``domains.dns_records``) by real DNS queries.

    check_domain ─┬─ spf       TXT   <domain>                 each sending IP gets "pass"
      (concurrent)├─ dkim      TXT   <selector>._domainkey.<d> p= is our public key
                  ├─ dmarc     TXT   _dmarc.<domain>          one v=DMARC1 record
                  ├─ mx        MX    <domain>                 one of the hosts is ours
                  └─ tracking  CNAME track.<domain>           points to our tracking host
                        → {purpose: RecordCheck(status, found, detail)}
    check_dkim: one more DKIM record (a rotation's dkim_next, the Ed25519 dkim_ed25519)

A record is ``ok``, ``wrong`` (``found`` shows what DNS holds, ``detail`` why it is not
ours) or ``missing`` (NXDOMAIN, or no record of the type). A query that fails (SERVFAIL,
timeout) decides nothing: that record comes back ``pending`` with the failure in
``detail``, and :func:`statuses` keeps the status the record had before, so a resolver's
bad minute does not demote a verified domain. Each ``check_domain`` call has a resolver
of its own, cache included: a user who just fixed a record and asks again must not get
the old answer. :func:`domain_state` turns the statuses into SendCloud's domain state.

SPF is judged as a receiver judges it: ``spf.check_host`` (RFC 7208) for each of our
sending IPs, and the record is ``ok`` only when every one of them gets ``pass``. The
queries themselves, and what a failed one means, are ``dns_query``'s.
"""

from __future__ import annotations

import asyncio
import ipaddress
import re
from collections.abc import Awaitable, Mapping
from dataclasses import dataclass
from typing import Literal

import dns.asyncresolver

from postwire_ingest.dns_query import DnsFailure, make_resolver, query, txt
from postwire_ingest.domains import PURPOSES
from postwire_ingest.spf import SpfResult, check_host, spf_records

__all__ = [
    "DomainState",
    "Expected",
    "RecordCheck",
    "Status",
    "addresses_of",
    "check_dkim",
    "check_domain",
    "domain_state",
    "statuses",
]

Status = Literal["pending", "ok", "wrong", "missing"]
DomainState = Literal["unverified", "usable", "verified"]

CHECK_TIMEOUT = 10.0  # one record's whole check (SPF may chain a dozen queries)


@dataclass(frozen=True, slots=True)
class Expected:
    """What the records must say; the caller derives ``sending_ips`` from our HELO name."""

    sending_ips: tuple[str, ...]
    mx_host: str
    tracking_host: str

    def __post_init__(self) -> None:
        for ip in self.sending_ips:
            ipaddress.ip_address(ip)  # ValueError here, not inside the concurrent checks


@dataclass(frozen=True, slots=True)
class RecordCheck:
    status: Status
    found: tuple[str, ...] = ()  # values in DNS now: a TXT record's strings joined, "10 mx."
    detail: str | None = None  # why not ok; for "pending", the DNS failure


def _host(name: str) -> str:
    return name.strip().rstrip(".").lower()


# --- SPF: our sending IPs pass ---------------------------------------------------------


def judge_spf(record: str, results: Mapping[str, SpfResult]) -> RecordCheck:
    """``ok`` only when every sending IP passes; a ~all or ?all fallback is not a pass."""
    for result in results.values():
        if result.result == "permerror":
            return RecordCheck("wrong", (record,), f"permerror: {result.reason}")
    failing = [
        f"{ip} gets {r.result}"
        for ip, r in results.items()
        if r.result not in {"pass", "temperror"}
    ]
    if failing:
        return RecordCheck("wrong", (record,), "; ".join(failing))
    for result in results.values():
        if result.result == "temperror":
            return RecordCheck("pending", (record,), result.reason)
    return RecordCheck("ok", (record,))


async def _check_spf(
    resolver: dns.asyncresolver.Resolver, domain: str, ips: tuple[str, ...]
) -> RecordCheck:
    records = spf_records(await txt(resolver, domain))
    if not records:
        return RecordCheck("missing")
    if len(records) > 1:
        return RecordCheck("wrong", tuple(records), "permerror: multiple SPF records")
    if not ips:
        return RecordCheck("pending", tuple(records), "no sending address to check it for")
    results = await asyncio.gather(*(check_host(resolver, ip, domain) for ip in ips))
    return judge_spf(records[0], dict(zip(ips, results, strict=True)))


# --- DKIM, DMARC, MX, tracking ----------------------------------------------------------


def judge_dkim(records: list[str], public_key_b64: str, kind: str = "rsa") -> RecordCheck:
    """``ok`` when the one key record (RFC 6376 3.6.1) of ``kind`` (k=: rsa, or ed25519 of
    RFC 8463) carries our ``p=``."""
    if not records:
        return RecordCheck("missing")
    found = tuple(records)
    if len(records) > 1:
        # RFC 6376 3.6.2.2: several records at a selector give undefined results.
        return RecordCheck("wrong", found, "several TXT records at the selector")
    tags: dict[str, str] = {}
    for part in filter(None, (p.strip() for p in records[0].split(";"))):
        tag, equals, value = part.partition("=")
        if not equals or tag.strip() in tags:
            return RecordCheck("wrong", found, "not a DKIM key record")
        tags[tag.strip()] = re.sub(r"\s", "", value)
    if tags.get("v", "DKIM1") != "DKIM1" or tags.get("k", "rsa") != kind or "p" not in tags:
        what = "RSA" if kind == "rsa" else kind.capitalize()
        return RecordCheck("wrong", found, f"not a DKIM {what} key record")
    if tags["p"] != re.sub(r"\s", "", public_key_b64):
        return RecordCheck("wrong", found, "revoked (empty p=)" if not tags["p"] else "another key")
    return RecordCheck("ok", found)


def judge_dmarc(records: list[str]) -> RecordCheck:
    """One record starting ``v=DMARC1`` (RFC 7489 6.6.3: several mean no policy)."""
    if not records:
        return RecordCheck("missing")
    dmarc = [r for r in records if re.match(r"v\s*=\s*DMARC1\s*(;|$)", r)]
    if len(dmarc) == 1:
        return RecordCheck("ok", tuple(records))
    return RecordCheck(
        "wrong",
        tuple(records),
        "several DMARC records" if dmarc else "no record starts with v=DMARC1",
    )


def judge_mx(records: list[tuple[int, str]], expected_host: str) -> RecordCheck:
    if not records:
        return RecordCheck("missing")
    found = tuple(f"{pref} {host.rstrip('.') or '.'}" for pref, host in sorted(records))
    if any(_host(host) == _host(expected_host) for _, host in records):
        return RecordCheck("ok", found)
    if [_host(host) for _, host in records] == [""]:
        return RecordCheck("wrong", found, "null MX: the domain accepts no mail")
    return RecordCheck("wrong", found, f"no MX host is {_host(expected_host)}")


def judge_tracking(targets: list[str], expected_host: str) -> RecordCheck:
    if not targets:
        return RecordCheck("missing")
    found = tuple(target.rstrip(".") for target in targets)
    if _host(targets[0]) == _host(expected_host):
        return RecordCheck("ok", found)
    return RecordCheck("wrong", found, f"points elsewhere than {_host(expected_host)}")


async def _mx(resolver: dns.asyncresolver.Resolver, domain: str) -> list[tuple[int, str]]:
    return [(r.preference, r.exchange.to_text()) for r in await query(resolver, domain, "MX")]


async def _cname(resolver: dns.asyncresolver.Resolver, name: str) -> list[str]:
    return [r.target.to_text() for r in await query(resolver, name, "CNAME")]


async def _bounded(check: Awaitable[RecordCheck], seconds: float) -> RecordCheck:
    try:
        async with asyncio.timeout(seconds):
            return await check
    except DnsFailure as exc:
        return RecordCheck("pending", detail=f"DNS lookup failed: {exc}")
    except TimeoutError:
        return RecordCheck("pending", detail=f"DNS lookups took over {seconds:g} s")


async def check_domain(
    domain: str,
    selector: str,
    public_key_b64: str,
    expected: Expected,
    nameservers: list[str],
    *,
    seconds_per_record: float = CHECK_TIMEOUT,
) -> dict[str, RecordCheck]:
    """Every record of ``dns_records`` checked at once, keyed by purpose; each check gets
    ``seconds_per_record`` in all, so one slow record leaves the others' answers."""
    resolver = make_resolver(nameservers)

    async def judged(purpose: str) -> RecordCheck:
        if purpose == "spf":
            return await _check_spf(resolver, domain, expected.sending_ips)
        if purpose == "dkim":
            return judge_dkim(
                await txt(resolver, f"{selector}._domainkey.{domain}"), public_key_b64
            )
        if purpose == "dmarc":
            return judge_dmarc(await txt(resolver, f"_dmarc.{domain}"))
        if purpose == "mx":
            return judge_mx(await _mx(resolver, domain), expected.mx_host)
        return judge_tracking(await _cname(resolver, f"track.{domain}"), expected.tracking_host)

    checks = await asyncio.gather(*(_bounded(judged(p), seconds_per_record) for p in PURPOSES))
    return dict(zip(PURPOSES, checks, strict=True))


async def check_dkim(
    domain: str,
    selector: str,
    public_key_b64: str,
    nameservers: list[str],
    *,
    kind: str = "rsa",
    seconds: float = CHECK_TIMEOUT,
) -> RecordCheck:
    """One DKIM key's record: a rotation's new key before it signs, an Ed25519 key
    (``kind="ed25519"``)."""
    resolver = make_resolver(nameservers)

    async def judged() -> RecordCheck:
        records = await txt(resolver, f"{selector}._domainkey.{domain}")
        return judge_dkim(records, public_key_b64, kind)

    return await _bounded(judged(), seconds)


async def addresses_of(host: str, nameservers: list[str]) -> tuple[str, ...]:
    """The A and AAAA addresses of ``host`` (our HELO name: the IPs we send from)."""
    resolver = make_resolver(nameservers)
    found: list[str] = []
    for rdtype in ("A", "AAAA"):
        try:
            found.extend(r.address for r in await query(resolver, host, rdtype))
        except DnsFailure:
            continue
    return tuple(found)


def statuses(
    checks: Mapping[str, RecordCheck], previous: Mapping[str, str] | None = None
) -> dict[str, str]:
    """Statuses to store: a record whose check failed in DNS keeps its previous one."""
    before = previous or {}
    return {
        purpose: before.get(purpose, "pending") if check.status == "pending" else check.status
        for purpose, check in checks.items()
    }


def domain_state(record_statuses: Mapping[str, str]) -> DomainState:
    """``usable`` once SPF and DKIM pass (what receivers check: the domain may send),
    ``verified`` when MX passes too (bounces and replies reach us); DMARC is optional and
    the tracking CNAME does not count.

    This is the issue's reading of SendCloud. The seed's console text is stricter (MX
    needed for ``usable``, DMARC for ``verified``); sending would then wait for a record
    receivers never look at, so the issue's rule is the one built (README, "Domains").
    """
    if any(record_statuses.get(p) != "ok" for p in ("spf", "dkim")):
        return "unverified"
    return "verified" if record_statuses.get("mx") == "ok" else "usable"
