"""A catch-all SMTP sink as its own process, logging each message's arrival.

    python -m postwire_testkit.sink --port 2525 --log arrivals.tsv

Each accepted message appends ``<unix time>\\t<X-Postwire-Env-Id>\\t<size>`` to the log, so a
benchmark can match arrivals to what it sent without sharing a process (or a GIL) with it.

It is a minimal ESMTP server on a bare ``asyncio.Protocol`` (EHLO, MAIL, RCPT, DATA,
RSET, NOOP, QUIT; PIPELINING advertised), like Postfix's ``smtp-sink``: the benchmark's
reference MTA delivers into a C sink, and an aiosmtpd sink would cost more CPU than the
system under test spends on some of its steps.
"""

from __future__ import annotations

import argparse
import asyncio
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import IO

_ENV_ID = re.compile(rb"^X-Postwire-Env-Id: *(\S+)", re.MULTILINE)
_EHLO = b"250-sink\r\n250-PIPELINING\r\n250-8BITMIME\r\n250-SIZE 52428800\r\n250 SMTPUTF8\r\n"


class SinkProtocol(asyncio.Protocol):
    def __init__(self, out: IO[str]) -> None:
        self.out = out
        self.buffer = bytearray()
        self.in_data = False
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        transport.write(b"220 sink ESMTP\r\n")

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        replies: list[bytes] = []
        while True:
            if self.in_data:
                end = self.buffer.find(b"\r\n.\r\n")
                if end == -1:
                    break
                message = bytes(self.buffer[:end])
                del self.buffer[: end + 5]
                self.in_data = False
                found = _ENV_ID.search(message[:8192])
                env_id = found.group(1).decode() if found else "-"
                self.out.write(f"{time.time():.6f}\t{env_id}\t{len(message)}\n")
                replies.append(b"250 2.0.0 Ok: queued\r\n")
                continue
            end = self.buffer.find(b"\r\n")
            if end == -1:
                break
            line = bytes(self.buffer[:end])
            del self.buffer[: end + 2]
            verb = line[:4].upper()
            if verb == b"EHLO":
                replies.append(_EHLO)
            elif verb == b"HELO":
                replies.append(b"250 sink\r\n")
            elif verb == b"DATA":
                self.in_data = True
                replies.append(b"354 End data with <CR><LF>.<CR><LF>\r\n")
            elif verb == b"QUIT":
                replies.append(b"221 Bye\r\n")
                assert self.transport is not None
                self.transport.write(b"".join(replies))
                self.transport.close()
                return
            else:  # MAIL, RCPT, RSET, NOOP and anything else
                replies.append(b"250 2.0.0 Ok\r\n")
        if replies and self.transport is not None:
            self.transport.write(b"".join(replies))


async def serve(host: str, port: int, out: IO[str]) -> None:
    loop = asyncio.get_running_loop()
    server = await loop.create_server(lambda: SinkProtocol(out), host, port, backlog=1024)
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    async with server:
        await stop.wait()


class SinkProcess:
    """This sink as a child process on a free loopback port, logging to ``workdir``."""

    def __init__(self, workdir: Path, within: float = 10.0) -> None:
        from postwire_testkit.smtp import free_port

        self.port = free_port()
        self.log = workdir / "arrivals.tsv"
        self.log.touch()
        self._proc = subprocess.Popen(  # noqa: S603 - this module
            [sys.executable, "-m", "postwire_testkit.sink", "--port", str(self.port),
             "--log", str(self.log)],
        )  # fmt: skip
        deadline = time.monotonic() + within
        while True:
            try:
                with socket.create_connection(("127.0.0.1", self.port), 0.2):
                    return
            except OSError:
                if time.monotonic() > deadline:
                    self.stop()
                    raise RuntimeError("the SMTP sink did not start") from None
                time.sleep(0.05)

    def arrivals(self) -> dict[str, float]:
        """Each message's first arrival: env_id -> unix time."""
        found: dict[str, float] = {}
        for line in self.log.read_text().splitlines():
            at, env_id, _ = line.split("\t")
            found.setdefault(env_id, float(at))
        return found

    def count(self) -> int:
        """Messages received so far (repeats included)."""
        with self.log.open("rb") as log:
            return sum(1 for _ in log)

    def stop(self) -> None:
        self._proc.terminate()
        self._proc.wait(10)


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--log", required=True, help="file to append arrivals to")
    args = parser.parse_args()
    with open(args.log, "a", buffering=1) as out:
        asyncio.run(serve(args.host, args.port, out))


if __name__ == "__main__":
    main()
