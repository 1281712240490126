"""A catch-all SMTP sink as its own process, logging each message's arrival.

    python -m postwire_testkit.sink --port 2525 --log arrivals.tsv

Each accepted message appends ``<unix time>\\t<X-Postwire-Env-Id>\\t<size>`` to the log, so a
benchmark can match arrivals to what it sent without sharing a process (or a GIL) with it.
"""

from __future__ import annotations

import argparse
import asyncio
import re
import signal
import time
from typing import IO, Any

from aiosmtpd.controller import Controller

_ENV_ID = re.compile(rb"^X-Postwire-Env-Id: *(\S+)", re.MULTILINE)


class _Logger:
    def __init__(self, out: IO[str]) -> None:
        self.out = out

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        data = envelope.original_content or b""
        match = _ENV_ID.search(data[:8192])
        env_id = match.group(1).decode() if match else "-"
        self.out.write(f"{time.time():.6f}\t{env_id}\t{len(data)}\n")
        self.out.flush()
        return "250 2.0.0 OK"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--log", required=True, help="file to append arrivals to")
    args = parser.parse_args()
    with open(args.log, "a", buffering=1) as out:
        controller = Controller(_Logger(out), hostname=args.host, port=args.port, ready_timeout=10)
        controller.start()
        stop = asyncio.Event()
        loop = asyncio.new_event_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        loop.run_until_complete(stop.wait())
        controller.stop()


if __name__ == "__main__":
    main()
