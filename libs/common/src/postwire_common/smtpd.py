"""aiosmtpd sessions with the limits every SMTP listener of ours needs, and two faster paths.

A source address holds at most ``per_ip`` sessions: the rest are answered ``421`` before
the greeting and closed, so one host cannot take every slot (connection floods, slowloris
with many sockets). aiosmtpd's own idle timeout closes sessions that stop talking.

Two of aiosmtpd's commands are replaced, for speed, keeping their replies and guarantees
(and simple ``<local@host>`` paths are parsed by a regex first):

- ``STARTTLS`` upgrades through the event loop's ``start_tls`` (uvloop's TLS, in C)
  instead of aiosmtpd's pure-Python TLS protocol, which spent a quarter of a submission
  session's time encrypting replies. What the client sent before the handshake is
  discarded (RFC 3207 4.2; STARTTLS command injection), and the session starts over.
- ``DATA`` reads the message in chunks up to the first ``CRLF.CRLF`` instead of one
  awaited line at a time (hundreds of awaits for a 50 KB message). Only that exact
  sequence ends the data (SMTP smuggling: bare LF or CR forms never do), lines are
  unstuffed, a line over 1000 octets or data over ``data_size_limit`` is refused after
  the data ends, as aiosmtpd does, and the idle timer restarts with every chunk.
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections import Counter
from collections.abc import Callable
from typing import Any

from aiosmtpd.smtp import MISSING, SMTP, TLSSetupException

# aiosmtpd logs every command at INFO, recipient addresses included: warnings only.
logging.getLogger("mail.log").setLevel(logging.WARNING)

# <dot-atom@host> and what follows: most envelope addresses, parsed without the email
# package's header parser (a tenth of a submission's time); others take aiosmtpd's path.
_SIMPLE_PATH = re.compile(r"\s*<([A-Za-z0-9!#$%&'*+/=?^_`{|}~.-]+@[A-Za-z0-9.-]+)>(.*)", re.S)
END_OF_DATA = b"\r\n.\r\n"
CHUNK = 64 * 1024
MAX_LINE = 1000  # octets of a line without its CRLF (RFC 5321 4.5.3.1.6)

TOO_MANY = b"421 4.7.0 Too many connections from your address\r\n"


class CappedSMTP(SMTP):
    """aiosmtpd's session with a cap on sessions per source address; ``refused`` is called
    for each connection refused (a metric)."""

    def __init__(
        self,
        handler: Any,
        open_per_ip: Counter[str],
        per_ip: int,
        refused: Callable[[], None] = lambda: None,
        **kwargs: Any,
    ) -> None:
        super().__init__(handler, **kwargs)
        self._open = open_per_ip
        self._per_ip = per_ip
        self._refused = refused
        self._ip: str | None = None

    @property
    def peer_ip(self) -> str:
        return self._ip or "?"

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        first = self.transport is None  # STARTTLS calls this again on the same session
        super().connection_made(transport)
        if not first:
            return
        peer = transport.get_extra_info("peername")
        self._ip = peer[0] if peer else "?"
        self._open[self._ip] += 1
        if self._open[self._ip] > self._per_ip:
            # Written before the greeting (the session task has not run yet), then closed.
            self._refused()
            transport.write(TOO_MANY)  # type: ignore[attr-defined]
            transport.close()

    def connection_lost(self, error: Exception | None) -> None:
        if self._ip is not None:
            self._open[self._ip] -= 1
            if self._open[self._ip] <= 0:
                del self._open[self._ip]
            self._ip = None
        super().connection_lost(error)

    def _getaddr(self, arg: str) -> tuple[str | None, str | None]:
        simple = _SIMPLE_PATH.fullmatch(arg) if arg else None
        if simple is None or (
            self.local_part_limit and simple.group(1).index("@") > self.local_part_limit
        ):
            return super()._getaddr(arg)
        return simple.group(1), simple.group(2).strip()

    async def smtp_STARTTLS(self, arg: str) -> None:
        if arg:
            await self.push("501 Syntax: STARTTLS")
            return
        if not self.tls_context or self._tls_protocol:
            await self.push("454 TLS not available")
            return
        await self.push("220 Ready to start TLS")
        self._reader._buffer.clear()  # type: ignore[attr-defined]  # sent in the clear
        try:
            await self._writer.start_tls(self.tls_context)
        except Exception as error:
            raise TLSSetupException() from error
        transport = self._writer.transport
        self.transport = transport
        self._reader._transport = transport  # type: ignore[attr-defined]
        self._tls_protocol = transport  # type: ignore[assignment]  # aiosmtpd: "TLS is on"
        peer = self.session.peer if self.session else None
        self._set_rset_state()  # type: ignore[no-untyped-call]  # RFC 3207 4.2: forget what came before
        self.session = self._create_session()
        self.session.peer = peer
        self.session.ssl = transport.get_extra_info("ssl_object")
        self._reset_timeout()

    async def smtp_DATA(self, arg: str) -> None:
        if await self.check_helo_needed() or await self.check_auth_needed("DATA"):
            return
        assert self.envelope is not None
        if not self.envelope.rcpt_tos:
            await self.push("503 Error: need RCPT command")
            return
        if arg:
            await self.push("501 Syntax: DATA")
            return
        await self.push("354 End data with <CR><LF>.<CR><LF>")
        data = await self._read_data()
        if data is None:
            self._set_post_data_state()  # type: ignore[no-untyped-call]
            await self.push("552 Error: Too much mail data")
            return
        if len(data) > MAX_LINE and max(map(len, data.splitlines())) > MAX_LINE:
            self._set_post_data_state()  # type: ignore[no-untyped-call]
            await self.push("500 Line too long (see RFC5321 4.5.3.1.6)")
            return
        self.envelope.content = self.envelope.original_content = data
        status = await self._call_handler_hook("DATA")
        self._set_post_data_state()  # type: ignore[no-untyped-call]
        await self.push("250 OK" if status is MISSING else status)

    async def _read_data(self) -> bytes | None:
        """The message up to the first CRLF.CRLF, unstuffed; None when it was larger than
        ``data_size_limit`` (read to its end all the same, keeping only a tail)."""
        limit = self.data_size_limit or 0
        buffer = bytearray(b"\r\n")  # a message that is only "." ends at once
        dropped = 0  # bytes of an oversized message let go
        start = 0
        while (found := buffer.find(END_OF_DATA, start)) == -1:
            if limit and dropped + len(buffer) > limit + 2 + len(END_OF_DATA):
                keep = len(END_OF_DATA) - 1  # the end may start in what is kept
                dropped += len(buffer) - keep
                del buffer[:-keep]
            start = max(0, len(buffer) - len(END_OF_DATA) + 1)
            chunk = await self._reader.read(CHUNK)
            if not chunk:
                raise ConnectionResetError("the client closed the connection in DATA")
            self._reset_timeout()
            buffer += chunk
        # What follows the end of data is the client's next commands (PIPELINING).
        self._reader._buffer[0:0] = buffer[found + len(END_OF_DATA) :]  # type: ignore[attr-defined]
        if dropped or (limit and found > limit):  # found: the data's length, final CRLF in
            return None
        return bytes(buffer[: found + 2]).replace(b"\r\n.", b"\r\n")[2:]
