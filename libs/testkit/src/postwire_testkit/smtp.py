"""An SMTP server standing in for recipients' mail servers (aiosmtpd, own thread).

It keeps every accepted message and can be told, per recipient, to refuse
(``reject``), to fail temporarily a number of times (``tempfail``), or to be slow. Given
a ``tls`` context it offers STARTTLS with that certificate, and notes which messages came
over TLS.
"""

from __future__ import annotations

import email
import socket
import ssl
import threading
import time
from dataclasses import dataclass, field
from email import policy
from email.message import EmailMessage
from typing import Any

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Envelope, Session


@dataclass
class Received:
    mail_from: str
    rcpt_tos: list[str]
    data: bytes
    peer: str
    peer_port: int
    at: float = field(default_factory=time.monotonic)
    tls: bool = False  # the session had done STARTTLS

    @property
    def message(self) -> EmailMessage:
        parsed = email.message_from_bytes(self.data, policy=policy.default)
        assert isinstance(parsed, EmailMessage)
        return parsed


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


class _Handler:
    def __init__(self, sink: SmtpSink) -> None:
        self.sink = sink

    async def handle_EHLO(
        self,
        server: SMTP,
        session: Session,
        envelope: Envelope,
        hostname: str,
        responses: list[str],
    ) -> list[str]:
        session.host_name = hostname
        if self.sink.pipelining:  # aiosmtpd reads pipelined commands; it only won't say so
            responses.insert(-1, "250-PIPELINING")
        return responses

    async def handle_RCPT(
        self, server: SMTP, session: Session, envelope: Envelope, address: str, options: Any
    ) -> str:
        reply = self.sink._rcpt_reply(address)
        if reply is not None:
            return reply
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        if self.sink.delay:
            import asyncio

            await asyncio.sleep(self.sink.delay)
        data = envelope.original_content or b""
        with self.sink._lock:
            self.sink.received.append(
                Received(
                    str(envelope.mail_from),
                    list(envelope.rcpt_tos),
                    bytes(data),
                    str(session.peer[0]) if session.peer else "",
                    int(session.peer[1]) if session.peer else 0,
                    tls=session.ssl is not None,
                )
            )
        return "250 2.0.0 OK queued"


class SmtpSink:
    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int | None = None,
        *,
        pipelining: bool = True,
        tls: ssl.SSLContext | None = None,
    ) -> None:
        self.host = host
        self.pipelining = pipelining
        self.port = port or free_port(host)
        self.received: list[Received] = []
        self.delay = 0.0
        self._lock = threading.Lock()
        self._rejects: dict[str, str] = {}
        self._tempfails: dict[str, list[Any]] = {}
        self.connections = 0
        self._controller = Controller(
            _Handler(self),
            hostname=host,
            port=self.port,
            data_size_limit=20 * 1024 * 1024,
            ready_timeout=10,
            server_hostname="mx.test",
            tls_context=tls,
        )

    def start(self) -> SmtpSink:
        self._controller.start()
        return self

    def stop(self) -> None:
        self._controller.stop()

    def reject(self, address: str, reply: str = "550 5.1.1 <{}>: user unknown") -> None:
        self._rejects[address.lower()] = reply.format(address)

    def tempfail(self, address: str, times: int, reply: str = "451 4.7.1 try again later") -> None:
        self._tempfails[address.lower()] = [times, reply]

    def _rcpt_reply(self, address: str) -> str | None:
        key = address.lower()
        with self._lock:
            if key in self._rejects:
                return self._rejects[key]
            pending = self._tempfails.get(key)
            if pending and pending[0] > 0:
                pending[0] -= 1
                return str(pending[1])
        return None

    def for_rcpt(self, address: str) -> list[Received]:
        with self._lock:
            return [r for r in self.received if address.lower() in (a.lower() for a in r.rcpt_tos)]
