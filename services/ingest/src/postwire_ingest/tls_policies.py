"""Accounts' TLS policies per recipient domain (SendCloud's "TLS 加密设置").

A rule names a recipient domain, or ``*`` for every domain without a rule of its own,
and a mode (:class:`~postwire_common.schemas.TlsMode`):

=============  =========================================================================
require        STARTTLS with a certificate that verifies for the MX host, or the message
               fails (status 4) with what was wrong
opportunistic  STARTTLS when the MX offers it, certificate not checked (the default)
none           never STARTTLS
=============  =========================================================================

::

    POST /v1/messages ──per recipient domain──▶ mode_for(account's rules, domain)
        ──▶ RecipientBatch.tls ──bus──▶ delivery.queue.tls ──▶ SmtpPool

Rules match the domain exactly (``example.org`` does not cover ``mx.example.org``).
The mode is decided when a request is accepted, so mail already queued keeps the mode it
was accepted with. Each ingest process remembers an account's rules for
:data:`CACHE_SECONDS`: a change is used at once by the process that made it and within
that time by the others.
"""

from __future__ import annotations

from collections.abc import Mapping

from postwire_common.schemas import TlsMode
from postwire_common.ttl_cache import TtlCache
from postwire_ingest.domains import normalize_domain
from postwire_ingest.tls_policy_store import TlsPolicyStore

WILDCARD = "*"
CACHE_SECONDS = 5.0
LONGEST_DOMAIN = 253  # RFC 1035: a recipient domain, not only what may be registered here


def normalize_rule_domain(name: str) -> str:
    """``*``, or a recipient domain in lower case and IDNA (``InvalidValue`` otherwise)."""
    if isinstance(name, str) and name.strip() == WILDCARD:
        return WILDCARD
    return normalize_domain(name, longest=LONGEST_DOMAIN)


def mode_for(rules: Mapping[str, TlsMode], domain: str) -> TlsMode:
    """The rule for ``domain`` (lower case, IDNA), else the ``*`` rule, else opportunistic."""
    return rules.get(domain) or rules.get(WILDCARD) or TlsMode.OPPORTUNISTIC


class TlsPolicies:
    """An account's rules as ``domain -> mode``, remembered briefly. One per process."""

    def __init__(self, store: TlsPolicyStore) -> None:
        self.store = store
        self._rules: TtlCache[str, Mapping[str, TlsMode]] = TtlCache(CACHE_SECONDS)

    async def rules(self, account_id: str) -> Mapping[str, TlsMode]:
        found = self._rules.get(account_id)
        if found is None:
            found = await self.store.modes(account_id)
            self._rules.put(account_id, found)
        return found

    def forget(self, account_id: str) -> None:
        self._rules.forget(lambda key: key == account_id)
