"""aiosmtpd sessions with the limits every SMTP listener of ours needs.

A source address holds at most ``per_ip`` sessions: the rest are answered ``421`` before
the greeting and closed, so one host cannot take every slot (connection floods, slowloris
with many sockets). aiosmtpd's own idle timeout closes sessions that stop talking.
"""

from __future__ import annotations

import asyncio
import logging
from collections import Counter
from collections.abc import Callable
from typing import Any

from aiosmtpd.smtp import SMTP

# aiosmtpd logs every command at INFO, recipient addresses included: warnings only.
logging.getLogger("mail.log").setLevel(logging.WARNING)

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
