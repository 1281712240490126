"""One SMTP transaction with PIPELINING (RFC 2920): MAIL, RCPT and DATA in one write.

aiosmtplib opens the session (EHLO, STARTTLS) but sends every command on its own and
waits for its reply: four round trips and four writes per message. Where the server
offers PIPELINING this module sends ``MAIL``, ``RCPT`` and ``DATA`` together, then the
message, and reads the replies in order: two round trips.

Replies that arrive together must all be kept, and aiosmtplib's protocol keeps one at a
time (it drops data that comes while a parsed reply waits to be picked up). So for the
length of the transaction the transport's protocol is swapped for :class:`_Replies`,
which keeps every byte, and swapped back after it; a connection lost meanwhile is passed
on to aiosmtplib's protocol, so the pool sees a dead connection as dead.
"""

from __future__ import annotations

import asyncio
import re

import aiosmtplib
from aiosmtplib.email import quote_address
from aiosmtplib.response import SMTPResponse

_CONTROL = re.compile(rb"[\x00-\x1f\x7f]")
_LINE_ENDS = re.compile(rb"(?:\r\n|\n|\r(?!\n))")
_LEADING_DOT = re.compile(rb"(?m)^\.")
MAX_REPLY = 64 * 1024


class Refused(Exception):
    """The server refused the transaction; ``reply`` is the refusal to classify."""

    def __init__(self, reply: SMTPResponse) -> None:
        super().__init__(f"{reply.code} {reply.message}")
        self.reply = reply


def parse_reply(buffer: bytearray) -> SMTPResponse | None:
    """Take one complete (possibly multi-line) reply off the front of ``buffer``."""
    lines: list[bytes] = []
    offset = 0
    while True:
        end = buffer.find(b"\n", offset)
        if end == -1:
            if len(buffer) > MAX_REPLY:
                raise aiosmtplib.SMTPResponseException(-1, "reply too long")
            return None
        line = bytes(buffer[offset : end + 1])
        offset = end + 1
        try:
            code = int(line[:3])
        except ValueError:
            raise aiosmtplib.SMTPResponseException(-1, "malformed reply") from None
        lines.append(line[4:].strip(b" \t\r\n"))
        if line[3:4] != b"-":
            del buffer[:offset]
            return SMTPResponse(code, b"\n".join(lines).decode("utf-8", "surrogateescape"))


class _Replies(asyncio.Protocol):
    def __init__(self) -> None:
        self.buffer = bytearray()
        self.arrived = asyncio.Event()
        self.lost: Exception | None = None

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        self.arrived.set()

    def eof_received(self) -> bool:
        self.lost = aiosmtplib.SMTPServerDisconnected("the server closed the connection")
        self.arrived.set()
        return False

    def connection_lost(self, exc: Exception | None) -> None:
        self.lost = self.lost or exc or aiosmtplib.SMTPServerDisconnected("connection lost")
        self.arrived.set()

    async def next(self, wait: float | None) -> SMTPResponse:
        while True:
            reply = parse_reply(self.buffer)
            if reply is not None:
                return reply
            if self.lost is not None:
                raise aiosmtplib.SMTPServerDisconnected(str(self.lost))
            self.arrived.clear()
            try:
                async with asyncio.timeout(wait):
                    await self.arrived.wait()
            except TimeoutError:
                raise aiosmtplib.SMTPReadTimeoutError("timed out waiting for a reply") from None


async def send(
    client: aiosmtplib.SMTP, mail_from: str, rcpt: str, raw: bytes, options: list[str]
) -> SMTPResponse:
    """Deliver ``raw`` to ``rcpt``; the final reply, or :class:`Refused`."""
    protocol = client.protocol
    transport = getattr(protocol, "transport", None)
    if protocol is None or transport is None or transport.is_closing():
        raise aiosmtplib.SMTPServerDisconnected("not connected")
    mail = b"MAIL FROM:" + quote_address(mail_from).encode("utf-8")
    if options:
        mail += b" " + " ".join(options).encode("ascii")
    to = b"RCPT TO:" + quote_address(rcpt).encode("utf-8")
    if _CONTROL.search(mail) or _CONTROL.search(to):
        raise ValueError("an address contains a control character")
    replies = _Replies()
    transport.set_protocol(replies)
    try:
        return await _transaction(transport, replies, mail, to, raw, client.timeout)
    finally:
        transport.set_protocol(protocol)
        if replies.lost is not None:
            protocol.connection_lost(replies.lost)


async def _transaction(
    transport: asyncio.WriteTransport,
    replies: _Replies,
    mail: bytes,
    to: bytes,
    raw: bytes,
    wait: float | None,
) -> SMTPResponse:
    transport.write(b"%s\r\n%s\r\nDATA\r\n" % (mail, to))
    mail_reply = await replies.next(wait)
    rcpt_reply = await replies.next(wait)
    data_reply = await replies.next(wait)
    refusal = next((r for r in (mail_reply, rcpt_reply) if not 200 <= r.code < 300), None)
    if data_reply.code != 354:
        raise Refused(refusal or data_reply)
    if refusal is not None:
        # The server took DATA although the envelope failed (RFC 2920 says it must not):
        # end an empty message so the session stays in step.
        transport.write(b".\r\n")
        await replies.next(wait)
        raise Refused(refusal)
    body = _LEADING_DOT.sub(b"..", _LINE_ENDS.sub(b"\r\n", raw))
    if not body.endswith(b"\r\n"):
        body += b"\r\n"
    transport.write(body + b".\r\n")
    final = await replies.next(wait)
    if not 200 <= final.code < 300:
        raise Refused(final)
    return final
