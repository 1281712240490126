"""The inbound MX: bounces and complaints about mail we sent. Never a relay.

::

    MTA ──RCPT TO──▶ our bounce domain, or a domain we send for? no: 550 5.7.1, nothing kept
        ──DATA──▶ parse_bounce (bounces/) ──▶ the message it names (delivery.results)
        ──▶ judge (reports.py) ──▶ failed / spam_report event in the outbox ──▶ 250

``250`` is answered only once the event is committed to the outbox (a database outage
answers ``451``, and the reporting MTA tries again). Everything else that arrives —
auto-replies, delayed notices, reports about messages we do not know, mail naming another
recipient — is answered ``250`` and dropped: refusing it would only make the reporting
MTA bounce the bounce. Nothing received is ever sent on: there is no relay path at all.

Every replica listens on ``POSTWIRE_INBOUND_PORT`` with ``SO_REUSEPORT``. Sessions are
short (60 s idle timeout), a source address holds at most ``PER_IP`` sessions, and
messages are limited in size. aiosmtpd >= 1.4.5 refuses the bare-LF end-of-data forms of
SMTP smuggling (CVE-2024-27305).
"""

from __future__ import annotations

import asyncio
import logging
from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime

from aiosmtpd.smtp import SMTP, Envelope, Session

from postwire_common.broker import topology
from postwire_common.broker.publish import Outgoing
from postwire_common.infra import is_infrastructure
from postwire_common.observability.metrics import INBOUND_MESSAGES
from postwire_common.schemas import EventBatch
from postwire_common.smtpd import CappedSMTP
from postwire_common.ttl_cache import TtlCache
from postwire_delivery.bounces import parse_bounce
from postwire_delivery.reports import env_id_of, judge
from postwire_delivery.store import DeliveryStore

log = logging.getLogger("postwire.delivery.inbound")

MAX_BYTES = 10 * 1024 * 1024  # reports are small; a returned original may not be
MAX_RECIPIENTS = 10
PER_IP = 20
IDLE_TIMEOUT = 60.0
DOMAINS_TTL = 60.0
NOT_OURS_TTL = 1.0


class Reports:
    """What the inbound MX accepts, and what it does with a report."""

    def __init__(self, store: DeliveryStore, bounce_domain: str, wake: Callable[[], None]):
        self._store = store
        self._bounce_domain = bounce_domain.lower()
        self._wake = wake
        # Per domain, briefly: a refused RCPT (a relay attempt) costs one small query per
        # domain and second at most, and a domain that has just sent is seen at once.
        self._ours: TtlCache[str, bool] = TtlCache(DOMAINS_TTL)
        self._not_ours: TtlCache[str, bool] = TtlCache(NOT_OURS_TTL)

    async def accepts(self, address: str) -> bool:
        """Mail for our bounce domain, or a domain we send for (its MX may point here)."""
        domain = address.rpartition("@")[2].lower().rstrip(".")
        if not domain:
            return False
        if domain == self._bounce_domain:
            return True
        if self._ours.get(domain):
            return True
        if self._not_ours.get(domain):
            return False
        ours = await self._store.signs_for(domain)
        (self._ours if ours else self._not_ours).put(domain, True)
        return ours

    async def take(self, raw: bytes, envelope_rcpt: str) -> str:
        """Act on one received message; what it was (for the log and the metric)."""
        if len(raw) > 64 * 1024:
            report = await asyncio.to_thread(parse_bounce, raw, envelope_rcpt)
        else:
            report = parse_bounce(raw, envelope_rcpt)
        env_id = env_id_of(report)
        sent = await self._store.sent(env_id) if env_id else None
        verdict = judge(report, sent, datetime.now(UTC))
        reason = verdict.reason
        if verdict.event is not None:
            outgoing = [
                Outgoing(
                    topology.EVENTS.name, "delivery.report", EventBatch(events=[verdict.event])
                )
            ]
            if await self._store.report(verdict.event.env_id, reason, report.format, outgoing):
                self._wake()
            else:
                reason = f"repeated {reason}"
        log.info(
            "inbound report",
            extra={
                "result": reason,
                "format": report.format,
                "matched_by": report.matched_by.value,
                "env_id": env_id,
                "rcpt": envelope_rcpt,
            },
        )
        return reason


class _Handler:
    def __init__(self, reports: Reports) -> None:
        self._reports = reports

    async def handle_RCPT(
        self,
        server: SMTP,
        session: Session,
        envelope: Envelope,
        address: str,
        rcpt_options: list[str],
    ) -> str:
        if len(envelope.rcpt_tos) >= MAX_RECIPIENTS:
            return "452 4.5.3 Too many recipients"
        try:
            ours = await self._reports.accepts(address)
        except Exception as exc:
            if not is_infrastructure(exc):
                raise
            return "451 4.3.0 Temporary failure, please try again later"
        if not ours:
            INBOUND_MESSAGES.labels("relay_refused").inc()
            return "550 5.7.1 Relaying denied: this server accepts mail only for its own domains"
        envelope.rcpt_tos.append(address)
        return "250 2.1.5 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        raw = envelope.original_content or b""
        try:
            for rcpt in envelope.rcpt_tos:
                INBOUND_MESSAGES.labels(await self._reports.take(raw, rcpt)).inc()
        except Exception:
            # A redelivered report makes the same event (fixed event ids): retrying is safe.
            log.exception("inbound report not recorded; the sender will retry")
            return "451 4.3.0 Temporary failure, please try again later"
        return "250 2.0.0 OK: report received"


async def serve(reports: Reports, host: str, port: int, hostname: str) -> asyncio.Server:
    """Listen for reports on ``host:port`` until the returned server is closed."""
    handler = _Handler(reports)
    open_per_ip: Counter[str] = Counter()
    loop = asyncio.get_running_loop()
    return await loop.create_server(
        lambda: CappedSMTP(
            handler,
            open_per_ip,
            PER_IP,
            INBOUND_MESSAGES.labels("too_many_connections").inc,
            hostname=hostname,
            data_size_limit=MAX_BYTES,
            enable_SMTPUTF8=True,
            timeout=IDLE_TIMEOUT,
            ident="postwire inbound",
        ),
        host=host,
        port=port,
        reuse_port=True,
    )
