"""Outbound SMTP with connections reused per destination.

One pool per delivery process. Per destination (IP, port) at most
``POSTWIRE_DELIVERY_CONNECTIONS_PER_HOST`` connections are open; a finished transaction
returns its connection to the idle list, and the next message for that destination
reuses it (MAIL/RCPT/DATA on an open session, no new TCP or TLS handshake). A reused
connection the server has meanwhile closed is replaced once, transparently.

TLS follows the recipient domain's mode (the account's TLS policy, ``TlsMode``):

=============  ==========================================================================
opportunistic  STARTTLS when offered, certificates not verified (as between MTAs without
               DANE/MTA-STS); a failed handshake falls back to plain text for an hour
require        STARTTLS must be offered and the certificate must verify for the MX host
               name (``Target.host``, not the address) against the system trust store
               and ``POSTWIRE_DELIVERY_CA_FILE``; otherwise :class:`TlsFailed`
none           never STARTTLS
=============  ==========================================================================

Idle connections are kept per (address, port, mode), so a session opened for one mode is
never reused for another: a ``require`` send only ever gets a verified session.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import ssl
import time
from collections import defaultdict, deque
from collections.abc import Callable

import aiosmtplib

from postwire_common.observability.metrics import SMTP_CONNECTIONS
from postwire_common.schemas import TlsMode
from postwire_delivery import pipelining
from postwire_delivery.results import DeliveryResult, classify_reply, soft
from postwire_delivery.routing import Target

log = logging.getLogger("postwire.delivery.smtp")

Key = tuple[str, int]  # (address, port): connections per destination are capped on it
IdleKey = tuple[str, int, TlsMode]  # sessions are reused only for the mode they were made for
TLS_RETRY_SECONDS = 3600.0


class _Connection:
    __slots__ = ("client", "last_used")

    def __init__(self, client: aiosmtplib.SMTP) -> None:
        self.client = client
        self.last_used = time.monotonic()


class ConnectFailed(Exception):
    """Could not open a session with this target; the next MX host may do better."""


class TlsFailed(ConnectFailed):
    """TLS was required and this target cannot give it: no STARTTLS, a certificate that
    does not verify for its name, a handshake that fails, STARTTLS refused with 5xx.

    These are how the server is set up, not passing trouble, so when every host of the
    domain answers like this the message fails (hard, status 4: the policy says "fails
    the message") instead of being retried for hours; a timeout or a lost connection
    stays a :class:`ConnectFailed` (soft).
    """


def mail_options(
    supports: Callable[[str], bool], mail_from: str, rcpt: str, raw: bytes
) -> list[str]:
    """MAIL FROM parameters: SIZE, and for mail submitted as 8-bit (SMTP submission keeps
    bodies and UTF-8 headers as sent) BODY=8BITMIME and SMTPUTF8 where the server has them."""
    options = [f"SIZE={len(raw)}"] if supports("size") else []
    eight_bit = not raw.isascii()
    if eight_bit and supports("8bitmime"):
        options.append("BODY=8BITMIME")
    if (eight_bit or not (mail_from + rcpt).isascii()) and supports("smtputf8"):
        options.append("SMTPUTF8")
    return options


def verifying_context(ca_file: str = "") -> ssl.SSLContext:
    """Host names checked, certificates verified against the system trust store and, if
    given, the CAs in ``ca_file`` (PEM)."""
    context = ssl.create_default_context(ssl.Purpose.SERVER_AUTH)
    if ca_file:
        context.load_verify_locations(cafile=ca_file)
    return context


class SmtpPool:
    def __init__(
        self,
        helo_name: str,
        *,
        per_host: int,
        timeout: float = 60.0,
        idle_seconds: float = 30.0,
        ca_file: str = "",
    ) -> None:
        self._helo = helo_name
        self._verified = verifying_context(ca_file)  # read now: a bad file fails at start
        self._per_host = per_host
        self._timeout = timeout
        self._idle_seconds = idle_seconds
        self._idle: dict[IdleKey, deque[_Connection]] = defaultdict(deque)
        self._slots: dict[Key, asyncio.Semaphore] = {}
        self._users: dict[Key, int] = defaultdict(int)  # sends using or waiting for a slot
        self._no_tls: dict[Key, float] = {}  # plain text until this monotonic time

    async def send(
        self,
        target: Target,
        mail_from: str,
        rcpt: str,
        raw: bytes,
        tls: TlsMode = TlsMode.OPPORTUNISTIC,
    ) -> DeliveryResult:
        """One transaction; raise :class:`ConnectFailed` if no session could be opened
        (:class:`TlsFailed` if ``tls`` is ``require`` and the target cannot do it)."""
        key = (target.ip, target.port)
        slot = self._slots.setdefault(key, asyncio.Semaphore(self._per_host))
        self._users[key] += 1
        try:
            async with slot:
                return await self._send_on_slot((*key, tls), target, mail_from, rcpt, raw)
        finally:
            self._users[key] -= 1
            if not self._users[key]:
                # Nothing uses this destination now: keep its dictionaries small.
                del self._users[key]
                self._slots.pop(key, None)
                for mode in TlsMode:
                    if not self._idle.get((*key, mode)):
                        self._idle.pop((*key, mode), None)

    async def _send_on_slot(
        self, key: IdleKey, target: Target, mail_from: str, rcpt: str, raw: bytes
    ) -> DeliveryResult:
        tls = key[2]
        conn, reused = self._take_idle(key), True
        if conn is None:
            conn, reused = await self._connect(target, tls), False
        try:
            result = await self._transaction(conn, target, mail_from, rcpt, raw)
        except (aiosmtplib.SMTPServerDisconnected, ConnectionError) as exc:
            self._discard(conn)
            if not reused:
                return soft(f"connection lost: {exc}", host=target.host)
            conn = await self._connect(target, tls)  # the server closed an idle session
            try:
                result = await self._transaction(conn, target, mail_from, rcpt, raw)
            except (aiosmtplib.SMTPException, OSError, TimeoutError) as again:
                self._discard(conn)
                return soft(f"connection lost: {again}", host=target.host)
        except (aiosmtplib.SMTPException, OSError, TimeoutError) as exc:
            self._discard(conn)
            return soft(f"{type(exc).__name__}: {exc}", host=target.host)
        conn.last_used = time.monotonic()
        self._idle[key].append(conn)
        return result

    async def _transaction(
        self, conn: _Connection, target: Target, mail_from: str, rcpt: str, raw: bytes
    ) -> DeliveryResult:
        client = conn.client
        options = mail_options(client.supports_extension, mail_from, rcpt, raw)
        try:
            if client.supports_extension("pipelining"):
                try:
                    reply = await pipelining.send(client, mail_from, rcpt, raw, options)
                except pipelining.Refused as refused:
                    raise aiosmtplib.SMTPResponseException(
                        refused.reply.code, refused.reply.message
                    ) from None
            else:
                await client.mail(mail_from, options=options)
                await client.rcpt(rcpt)
                reply = await client.data(raw)
        except aiosmtplib.SMTPResponseException as exc:
            if exc.code == 421:  # the server is closing the session
                raise aiosmtplib.SMTPServerDisconnected(exc.message) from exc
            with contextlib.suppress(aiosmtplib.SMTPException, OSError):
                await client.rset()
            return classify_reply(exc.code, exc.message, target.host)
        return classify_reply(reply.code, reply.message, target.host)

    async def _connect(self, target: Target, tls: TlsMode) -> _Connection:
        if tls is TlsMode.REQUIRE:
            client = await self._open_verified(target)
        elif tls is TlsMode.NONE:
            client = await self._open(target, start_tls=False)
        else:
            client = await self._open_opportunistic(target)
        SMTP_CONNECTIONS.inc()
        return _Connection(client)

    async def _open_opportunistic(self, target: Target) -> aiosmtplib.SMTP:
        key = (target.ip, target.port)
        use_tls = self._no_tls.get(key, 0.0) <= time.monotonic()
        try:
            return await self._open(target, start_tls=None if use_tls else False)
        except ssl.SSLError as exc:
            log.info(
                "STARTTLS failed; retrying in plain text",
                extra={"host": target.host, "error": str(exc)},
            )
            # Plain text for a while, then TLS is tried again (the server may be fixed).
            self._no_tls[key] = time.monotonic() + TLS_RETRY_SECONDS
            return await self._open(target, start_tls=False)

    async def _open_verified(self, target: Target) -> aiosmtplib.SMTP:
        """A session in TLS whose certificate verified for ``target.host``, or
        :class:`TlsFailed` saying what was wrong."""
        client = await self._open(target, start_tls=False)
        try:
            await self._start_verified_tls(client, target)
        except BaseException:
            client.close()
            raise
        return client

    async def _start_verified_tls(self, client: aiosmtplib.SMTP, target: Target) -> None:
        host = target.host
        try:
            await client.ehlo()
        except aiosmtplib.SMTPResponseException as exc:
            raise TlsFailed(
                f"{host} does not offer STARTTLS (EHLO: {exc.code} {exc.message})"
            ) from exc
        except (aiosmtplib.SMTPException, OSError, TimeoutError) as exc:
            raise ConnectFailed(f"{host} [{target.ip}]: {exc}") from exc
        if not client.supports_extension("starttls"):
            raise TlsFailed(f"{host} does not offer STARTTLS")
        try:
            await client.starttls(server_hostname=host, tls_context=self._verified)
            await client.ehlo()  # RFC 3207: the extensions again, as the TLS session says
        except ssl.SSLCertVerificationError as exc:
            raise TlsFailed(f"{host}: certificate verify failed: {exc.verify_message}") from exc
        except ssl.SSLError as exc:
            raise TlsFailed(f"{host}: TLS handshake failed: {exc.reason or exc}") from exc
        except aiosmtplib.SMTPResponseException as exc:
            text = f"{host} refused STARTTLS: {exc.code} {exc.message}"
            if 500 <= exc.code < 600:
                raise TlsFailed(text) from exc
            raise ConnectFailed(text) from exc  # 454 and the like: try again later
        except (aiosmtplib.SMTPException, OSError, TimeoutError) as exc:
            raise ConnectFailed(f"{host} [{target.ip}]: STARTTLS: {exc}") from exc

    async def _open(self, target: Target, *, start_tls: bool | None) -> aiosmtplib.SMTP:
        client = aiosmtplib.SMTP(
            hostname=target.ip,
            port=target.port,
            local_hostname=self._helo,
            timeout=self._timeout,
            start_tls=start_tls,
            validate_certs=False,
        )
        try:
            await client.connect()
        except ssl.SSLError:
            client.close()
            raise
        except aiosmtplib.SMTPResponseException as exc:
            client.close()
            raise ConnectFailed(f"{target.host} [{target.ip}]: {exc.code} {exc.message}") from exc
        except (aiosmtplib.SMTPException, OSError, TimeoutError) as exc:
            client.close()
            raise ConnectFailed(f"{target.host} [{target.ip}]: {exc}") from exc
        return client

    def _take_idle(self, key: IdleKey) -> _Connection | None:
        idle = self._idle.get(key)
        now = time.monotonic()
        while idle:
            conn = idle.pop()
            if conn.client.is_connected and now - conn.last_used < self._idle_seconds:
                return conn
            self._discard(conn)
        return None

    def _discard(self, conn: _Connection) -> None:
        conn.client.close()
        SMTP_CONNECTIONS.dec()

    async def reap_idle(self) -> None:
        """Close sessions idle longer than ``idle_seconds``; run periodically."""
        now = time.monotonic()
        for key, idle in list(self._idle.items()):
            while idle and now - idle[0].last_used >= self._idle_seconds:
                conn = idle.popleft()
                with contextlib.suppress(aiosmtplib.SMTPException, OSError, TimeoutError):
                    await asyncio.wait_for(conn.client.quit(), 5)
                self._discard(conn)
            if not idle and (key[0], key[1]) not in self._users:
                self._idle.pop(key, None)
        for destination, until in list(self._no_tls.items()):
            if until <= now:
                del self._no_tls[destination]

    async def close(self) -> None:
        for idle in self._idle.values():
            while idle:
                conn = idle.popleft()
                with contextlib.suppress(aiosmtplib.SMTPException, OSError, TimeoutError):
                    await asyncio.wait_for(conn.client.quit(), 2)
                self._discard(conn)
