"""A catch-all HTTP push receiver as its own process, logging each POST's arrival.

    python bench/pushsink.py --port 8099 --log pushes.tsv [--hang-seconds 30]

Each request appends ``<unix time>\\t<path>\\t<env_id>`` to the log (``env_id`` parsed from a
``SIMPLIFIED`` body, ``env_id=…&…``; ``-`` when there is none) and is answered ``200 OK``
at once, except on a path whose last segment starts with ``h`` (``/p1/h3``): those hang,
answering only after ``--hang-seconds`` (by then the sender has given up and closed).

It is a minimal HTTP/1.1 server on a bare ``asyncio.Protocol`` (keep-alive, pipelining,
``Content-Length`` bodies only), in the spirit of ``postwire_testkit.sink`` for SMTP: it
keeps up with thousands of POSTs a second on one core, so the benchmark measures the
pusher, not its receiver. The log is flushed every 50 ms.
"""

from __future__ import annotations

import argparse
import asyncio
import signal
import time
from typing import IO

_OK = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Type: text/plain\r\n\r\nok"


class PushProtocol(asyncio.Protocol):
    def __init__(self, out: IO[str], hang_seconds: float) -> None:
        self.out = out
        self.hang_seconds = hang_seconds
        self.buffer = bytearray()
        self.transport: asyncio.Transport | None = None
        self.hanging = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        replies: list[bytes] = []
        while not self.hanging:
            end = self.buffer.find(b"\r\n\r\n")
            if end == -1:
                break
            head = bytes(self.buffer[:end])
            length = 0
            for line in head.split(b"\r\n")[1:]:
                name, _, value = line.partition(b":")
                if name.strip().lower() == b"content-length":
                    length = int(value)
            if len(self.buffer) < end + 4 + length:
                break  # the body is still coming
            body = bytes(self.buffer[end + 4 : end + 4 + length])
            del self.buffer[: end + 4 + length]
            path = head.split(b" ", 2)[1].decode("ascii", "replace")
            env_id = "-"
            if body.startswith(b"env_id="):
                env_id = body[7 : body.find(b"&") if b"&" in body else None].decode("ascii")
            self.out.write(f"{time.time():.6f}\t{path}\t{env_id}\n")
            if path.rsplit("/", 1)[-1].startswith("h"):
                self.hanging = True  # nothing more on this connection until it answers
                loop = asyncio.get_running_loop()
                loop.call_later(self.hang_seconds, self._answer_late)
                break
            replies.append(_OK)
        if replies and self.transport is not None:
            self.transport.write(b"".join(replies))

    def _answer_late(self) -> None:
        if self.transport is not None and not self.transport.is_closing():
            self.transport.write(_OK)
        self.hanging = False

    def connection_lost(self, exc: Exception | None) -> None:
        self.transport = None


async def serve(host: str, port: int, out: IO[str], hang_seconds: float) -> None:
    loop = asyncio.get_running_loop()
    server = await loop.create_server(
        lambda: PushProtocol(out, hang_seconds), host, port, backlog=2048
    )
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)

    def flush() -> None:
        out.flush()
        loop.call_later(0.05, flush)

    flush()
    async with server:
        await stop.wait()
    out.flush()


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--log", required=True, help="file to append arrivals to")
    parser.add_argument(
        "--hang-seconds", type=float, default=30, help="how long /…/h* requests wait"
    )
    args = parser.parse_args()
    with open(args.log, "a") as out:
        asyncio.run(serve(args.host, args.port, out, args.hang_seconds))


if __name__ == "__main__":
    main()
