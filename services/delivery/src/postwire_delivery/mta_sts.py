"""MTA-STS (RFC 8461): a receiving domain that publishes an ``enforce`` policy gets mail
only over verified TLS, and only at the MX hosts its policy names.

::

    recipient domain ──TXT _mta-sts.<domain> "v=STSv1; id=…"
      ├─ no record (or DNS trouble): the cached policy if one is unexpired, else none
      ├─ the cached policy's id: the cached policy
      └─ a new id: GET https://mta-sts.<domain>/.well-known/mta-sts.txt ──parse──▶ cached
         for its max_age; a failed fetch keeps the cached policy (none cached: no policy)
    policy ──apply──▶ enforce: only MX hosts matching its mx patterns, TLS mode require
                      testing: as usual, a warning when no MX host matches
                      none, or no policy: as usual

Only used with ``POSTWIRE_MTA_STS`` (and not with a relay): when it is off, nothing here
runs. A domain's answer is remembered for a minute (``RECHECK_SECONDS``), so messages
ask DNS at most once a minute per domain, and one lookup per domain runs at a time.

Fetching (DNS, HTTPS, the SSRF rule the policy host is held to) is ``mta_sts_fetch.py``;
parsing, matching and applying a policy here are pure functions.

Certificate failures under a ``testing`` policy are not detected (sessions are then
opportunistic and unverified), and nothing is reported (TLSRPT, RFC 8460, is not done).
"""

from __future__ import annotations

import asyncio
import enum
import logging
import re
import time
from collections.abc import Sequence
from dataclasses import dataclass

from postwire_common.schemas import DeliveryStatus, TlsMode
from postwire_delivery.mta_sts_fetch import FetchFailed, PolicyFetcher
from postwire_delivery.results import hard
from postwire_delivery.routing import NoRoute, Route, Target

log = logging.getLogger("postwire.delivery.mta_sts")

MAX_AGE_LIMIT = 31_557_600  # RFC 8461 3.2: about a year
RECHECK_SECONDS = 60.0
DOMAINS_KEPT = 10_000


class Mode(enum.StrEnum):
    ENFORCE = "enforce"
    TESTING = "testing"
    NONE = "none"


class PolicyError(ValueError):
    """A TXT record or policy that is not valid: the domain has no usable policy."""


@dataclass(frozen=True, slots=True)
class Policy:
    mode: Mode
    mx: tuple[str, ...]  # patterns, lower case, without a final dot
    max_age: int  # seconds

    def allows(self, host: str) -> bool:
        return any(mx_matches(pattern, host) for pattern in self.mx)


# parsing (pure) ------------------------------------------------------------------------

_LABEL = r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?"
_PATTERN = re.compile(rf"(?:\*\.)?(?:{_LABEL}\.)*{_LABEL}", re.IGNORECASE)
_TXT_START = re.compile(r"v=STSv1[ \t]*;")
_POLICY_ID = re.compile(r"[A-Za-z0-9]{1,32}")


def mx_matches(pattern: str, host: str) -> bool:
    """RFC 8461 4.1: equal names, or ``*.`` standing for exactly one leftmost label."""
    pattern, host = pattern.lower().rstrip("."), host.lower().rstrip(".")
    if pattern.startswith("*."):
        label, _, rest = host.partition(".")
        return bool(label) and rest == pattern[2:]
    return host == pattern


def parse_txt(records: Sequence[str]) -> str:
    """The policy id of the one ``v=STSv1`` record among ``records`` (RFC 8461 3.1);
    :class:`PolicyError` when there is none, more than one, or it is not valid."""
    found = [r for r in records if _TXT_START.match(r)]
    if len(found) != 1:
        raise PolicyError(f"{len(found)} v=STSv1 records")
    policy_id: str | None = None
    for field in found[0].split(";")[1:]:
        key, equals, value = field.strip(" \t").partition("=")
        if not key:
            continue
        if not equals:
            raise PolicyError(f"not a key=value field: {field.strip()[:40]!r}")
        if key == "id" and policy_id is None:
            policy_id = value
    if policy_id is None or not _POLICY_ID.fullmatch(policy_id):
        raise PolicyError("no valid id (1 to 32 letters and digits)")
    return policy_id


def parse_policy(text: str) -> Policy:
    """A policy body (RFC 8461 3.2): ``key: value`` lines (CRLF, or LF), version STSv1,
    mode, max_age and, unless the mode is none, at least one mx pattern. Unknown keys
    are ignored; of a repeated key other than mx the first counts."""
    fields: dict[str, str] = {}
    mx: list[str] = []
    for line in re.split(r"\r?\n", text):
        if not line.strip(" \t"):
            continue
        key, colon, value = line.partition(":")
        key, value = key.strip(" \t"), value.strip(" \t")
        if not colon or not key:
            raise PolicyError(f"not a key: value line: {line[:40]!r}")
        if key == "mx":
            mx.append(value)
        else:
            fields.setdefault(key, value)
    if fields.get("version") != "STSv1":
        raise PolicyError("version is not STSv1")
    try:
        mode = Mode(fields.get("mode", ""))
    except ValueError:
        raise PolicyError(
            f"mode {fields.get('mode', '')[:20]!r} is not enforce, testing or none"
        ) from None
    max_age = fields.get("max_age", "")
    if not (max_age.isascii() and max_age.isdigit() and len(max_age) <= 10):
        raise PolicyError("max_age is not a number of seconds")
    if not mx and mode is not Mode.NONE:
        raise PolicyError("no mx pattern")
    for pattern in mx:
        if not _PATTERN.fullmatch(pattern.rstrip(".")):
            raise PolicyError(f"mx {pattern[:60]!r} is not a host name or *.domain pattern")
    patterns = tuple(p.lower().rstrip(".") for p in mx)
    return Policy(mode, patterns, min(int(max_age), MAX_AGE_LIMIT))


def apply(policy: Policy | None, domain: str, targets: list[Target], tls: TlsMode) -> Route:
    """The route under ``policy``: see the module's diagram. Under ``enforce`` TLS is
    required even where the account said ``none`` (RFC 8461 5: a sender honouring
    MTA-STS must not deliver to such a domain in clear); :class:`NoRoute` (failed) when no
    MX host matches."""
    if policy is None or policy.mode is Mode.NONE:
        return Route(targets, tls)
    allowed = [t for t in targets if policy.allows(t.host)]
    if policy.mode is Mode.TESTING:
        if not allowed:
            log.warning(
                "MTA-STS policy (testing) matches no MX host; delivering as usual",
                extra={"domain": domain, "hosts": _hosts(targets), "mx": ", ".join(policy.mx)},
            )
        return Route(targets, tls)
    label = f"MTA-STS policy of {domain} (enforce)"
    if not allowed:
        raise NoRoute(
            hard(DeliveryStatus.FAILED, f"{label}: no MX host matches it ({_hosts(targets)})")
        )
    return Route(allowed, TlsMode.REQUIRE, label)


def _hosts(targets: Sequence[Target]) -> str:
    return ", ".join(dict.fromkeys(t.host for t in targets))


# the cache (fetching is mta_sts_fetch.py) ---------------------------------------------


@dataclass(frozen=True, slots=True)
class _Stored:
    policy_id: str
    policy: Policy
    expires: float  # monotonic


class MtaSts:
    """Policies of recipient domains, looked up, fetched and cached."""

    def __init__(self, fetcher: PolicyFetcher, *, recheck: float = RECHECK_SECONDS) -> None:
        self._fetcher = fetcher
        self._recheck = recheck  # how long a domain's answer is remembered
        self._stored: dict[str, _Stored] = {}
        self._answers: dict[str, tuple[float, Policy | None]] = {}  # until, policy
        self._lookups: dict[str, asyncio.Task[Policy | None]] = {}

    async def route(self, domain: str, targets: list[Target], tls: TlsMode) -> Route:
        """``targets`` and ``tls`` under the domain's policy. When an enforce policy
        matches no MX host, the policy is looked up again first (RFC 8461 5.1: it may
        have changed with the MX records)."""
        domain = domain.lower().rstrip(".")
        policy = await self.policy(domain)
        if (
            policy is not None
            and policy.mode is Mode.ENFORCE
            and not any(policy.allows(t.host) for t in targets)
        ):
            policy = await self.policy(domain, fresh=True)
        return apply(policy, domain, targets, tls)

    async def policy(self, domain: str, *, fresh: bool = False) -> Policy | None:
        """The policy in force for ``domain`` (None: it has none); ``fresh`` asks DNS
        again even within ``RECHECK_SECONDS``."""
        answer = self._answers.get(domain)
        if answer is not None and answer[0] > time.monotonic() and not fresh:
            return answer[1]
        lookup = self._lookups.get(domain)
        if lookup is None:
            lookup = self._lookups[domain] = asyncio.create_task(self._look_up(domain))
            lookup.add_done_callback(lambda _: self._lookups.pop(domain, None))
        # Shielded: a caller's attempt timing out does not cancel the others' lookup.
        return await asyncio.shield(lookup)

    async def _look_up(self, domain: str) -> Policy | None:
        try:
            policy = await self._current(domain)
        except Exception:  # a bug here must not stop delivery: no policy, and say so
            log.exception("MTA-STS lookup failed", extra={"domain": domain})
            stored = self._unexpired(domain)
            policy = stored.policy if stored else None
        if len(self._answers) >= DOMAINS_KEPT:
            self._answers.clear()
        self._answers[domain] = (time.monotonic() + self._recheck, policy)
        return policy

    async def _current(self, domain: str) -> Policy | None:
        stored = self._unexpired(domain)
        policy_id = await self._discover(domain)
        if policy_id is None or (stored is not None and stored.policy_id == policy_id):
            return stored.policy if stored else None
        try:
            policy = parse_policy(await self._fetcher.policy_text(domain))
        except (FetchFailed, PolicyError) as exc:
            log.warning(
                "MTA-STS policy not fetched",
                extra={"domain": domain, "reason": str(exc), "cached": stored is not None},
            )
            return stored.policy if stored else None
        if len(self._stored) >= DOMAINS_KEPT:
            self._stored.clear()
        expires = time.monotonic() + policy.max_age
        self._stored[domain] = _Stored(policy_id, policy, expires)
        log.info(
            "MTA-STS policy fetched",
            extra={"domain": domain, "mode": policy.mode.value, "max_age": policy.max_age},
        )
        return policy

    def _unexpired(self, domain: str) -> _Stored | None:
        stored = self._stored.get(domain)
        if stored is not None and stored.expires <= time.monotonic():
            del self._stored[domain]
            return None
        return stored

    async def _discover(self, domain: str) -> str | None:
        """The id of the domain's TXT record; None without a valid one."""
        records = await self._fetcher.txt(domain)
        if not records:
            return None  # NXDOMAIN, no TXT, or DNS trouble: the cache decides
        try:
            return parse_txt(records)
        except PolicyError as exc:
            log.info("MTA-STS record not valid", extra={"domain": domain, "reason": str(exc)})
            return None
