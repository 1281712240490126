"""Sender domains checked by real DNS: on demand, again in the background, and the DKIM
key rotation that waits for its record.

::

    POST /v1/domains/{name}/verify ──▶ check every record (dns_check) ──▶ per record:
        status (ok | wrong | missing | pending) and the value found ──▶ domain state
        unverified ─▶ usable (SPF + DKIM: may send) ─▶ verified (+ MX)
    every POSTWIRE_DOMAIN_RECHECK_INTERVAL: the same for domains that may send; a record
        removed since moves the domain down (warning log, counter), senders then refused
        at accept time; mail already queued is delivered as it is
    POST /v1/domains/{name}/dkim/rotate ──▶ a new key and selector to publish; it signs
        once its record verifies (at a verify or a re-check), the old key is then dropped;
        a domain with Ed25519 on gets a new Ed25519 key at once (RSA signs meanwhile)
    Ed25519 on (POST /v1/domains with dkim_ed25519, or PATCH /v1/domains/{name}): its
        record (dkim_ed25519) is checked with the others; the key signs, next to the RSA
        key, while that record is ok. It does not count for the domain's state.

A DNS failure (SERVFAIL, timeout) decides nothing: the record keeps its last status.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, datetime
from typing import Any

import asyncpg

from postwire_common.config import Settings
from postwire_common.observability.metrics import DOMAIN_STATE_CHANGES
from postwire_ingest.dns_check import (
    Expected,
    RecordCheck,
    addresses_of,
    check_dkim,
    check_domain,
    domain_state,
    statuses,
)
from postwire_ingest.domains import generate_dkim_key, generate_ed25519_key, tracking_host
from postwire_ingest.store import IngestStore

log = logging.getLogger("postwire.ingest.domains")

RANK = {"unverified": 0, "usable": 1, "verified": 2}


def _ed25519_ok(row: asyncpg.Record) -> bool:
    return bool(row["dkim_ed25519"]) and row["record_status"].get("dkim_ed25519") == "ok"


def found_values(checks: dict[str, RecordCheck]) -> dict[str, Any]:
    return {p: {"found": list(c.found), "detail": c.detail} for p, c in checks.items()}


class DomainChecker:
    def __init__(self, settings: Settings, store: IngestStore, forget_senders: Any = None) -> None:
        self._settings = settings
        self._store = store
        self._forget = forget_senders or (lambda _tenant: None)

    async def _expected(self) -> Expected:
        ips = tuple(self._settings.sending_ips) or await addresses_of(
            self._settings.helo_name, self._settings.dns_nameservers
        )
        return Expected(ips, self._settings.helo_name, tracking_host(self._settings))

    async def verify(
        self, account_id: str, name: str, expected: Expected | None = None
    ) -> asyncpg.Record:
        """Check ``name``'s records now; the domain's row afterwards."""
        row = await self._store.get_domain(account_id, name)
        nameservers = self._settings.dns_nameservers
        checks = await check_domain(
            name, row["dkim_selector"], row["dkim_public_key"],
            expected or await self._expected(), nameservers,
        )  # fmt: skip
        waiting: RecordCheck | None = None  # a rotation's key whose record is not there yet
        if row["dkim_next_selector"]:
            selector = row["dkim_next_selector"]
            fresh = await check_dkim(name, selector, row["dkim_next_public_key"], nameservers)
            if fresh.status == "ok":  # the new key is published: it signs from now on
                await self._store.finish_dkim_rotation(account_id, name, selector)
                self._forget(account_id)  # cached senders carry the signing key
                checks["dkim"] = fresh
                log.info("DKIM key rotated", extra={"domain": name, "selector": selector})
            else:
                waiting = fresh
        ed_selector = row["dkim_ed25519_selector"] if row["dkim_ed25519"] else None
        if ed_selector is not None:
            checks["dkim_ed25519"] = await check_dkim(
                name, ed_selector, row["dkim_ed25519_public_key"], nameservers, kind="ed25519"
            )
        found = found_values(checks)
        record_status = statuses(checks, row["record_status"])
        state = domain_state(record_status)  # the Ed25519 record does not count for it
        if waiting is not None:
            found["dkim_next"] = {"found": list(waiting.found), "detail": waiting.detail}
            record_status["dkim_next"] = waiting.status
        saved = await self._store.save_domain_check(
            account_id, name, record_status, found, state, ed_selector
        )
        if saved is None:
            return row  # deleted meanwhile
        before, after = saved
        if after["status"] != before:
            self._changed(account_id, name, before, after["status"], record_status)
        elif _ed25519_ok(row) != _ed25519_ok(after):
            self._forget(account_id)  # cached senders carry the keys that sign
        return after

    def _changed(
        self, account_id: str, name: str, before: str, now: str, record_status: dict[str, str]
    ) -> None:
        self._forget(account_id)  # cached senders carry the domain's state
        down = RANK[now] < RANK[before]
        DOMAIN_STATE_CHANGES.labels("down" if down else "up").inc()
        failing = sorted(p for p, s in record_status.items() if s != "ok")
        log.log(
            logging.WARNING if down else logging.INFO,
            "domain moved %s: %s -> %s",
            "down" if down else "up",
            before,
            now,
            extra={"account": account_id, "domain": name, "not_ok": ",".join(failing)},
        )

    async def rotate(self, account_id: str, name: str) -> asyncpg.Record:
        """A new RSA key that signs once its record verifies; with Ed25519 on, a new
        Ed25519 key too, which replaces the old one at once."""
        row = await self._store.get_domain(account_id, name)
        now = datetime.now(UTC)
        key = await asyncio.to_thread(generate_dkim_key, now, row["dkim_selector"])
        ed = None
        if row["dkim_ed25519"]:
            new = generate_ed25519_key(key.selector)
            ed = (new.selector, new.private_pem, new.public_b64)
        rotated = await self._store.start_dkim_rotation(
            account_id, name, key.selector, key.private_pem, key.public_b64, ed
        )
        if ed is not None:
            self._forget(account_id)  # the old Ed25519 key no longer signs
        return rotated

    async def set_ed25519(self, account_id: str, name: str, on: bool) -> asyncpg.Record:
        """Turn Ed25519 signing on (with a new key, unless the domain kept one) or off."""
        key = None
        if on:
            row = await self._store.get_domain(account_id, name)
            # Microseconds; dropped if the domain kept a key.
            new = generate_ed25519_key(row["dkim_selector"])
            key = (new.selector, new.private_pem, new.public_b64)
        changed = await self._store.set_dkim_ed25519(account_id, name, key)
        self._forget(account_id)  # cached senders carry the keys that sign
        return changed

    async def recheck_all(self) -> int:
        """Check every domain that may send; how many were checked."""
        done = 0
        rows = await self._store.domains_to_recheck()
        if not rows:
            return 0
        expected = await self._expected()  # our sending IPs, resolved once a round
        for row in rows:
            try:
                await self.verify(row["account_id"], row["name"], expected)
                done += 1
            except Exception as exc:  # one domain's failure does not stop the round
                log.warning(
                    "domain re-check failed",
                    extra={"domain": row["name"], "error": repr(exc)},
                )
        return done

    async def run(self) -> None:
        interval = self._settings.domain_recheck_interval
        if not interval:
            return
        while True:
            await asyncio.sleep(interval)
            try:
                await self.recheck_all()
            except Exception as exc:  # PostgreSQL away: the next round tries again
                log.warning("domain re-check round failed", extra={"error": repr(exc)})
