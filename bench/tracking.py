"""Tracking hits per second: the open pixel and the click redirect, next to a no-op request.

Sets up a throwaway database and vhost, runs postwire (``run all``: the events service
serves /t/…) with a known POSTWIRE_SECRET_KEYS, stores one tracked HTML content and
``--messages`` message rows (request events through the events store), then drives
``--hits`` GETs per kind over ``--connections`` keep-alive connections with a minimal
HTTP/1.1 client:

- ``pixel``: ``/t/o/<token>.gif``, each message's own token (an open event each)
- ``click``: ``/t/c/<token>``, a 302 to the stored URL (a click event each)
- ``forged``: the pixel with a token that does not verify (the GIF, no event)
- reference, same run, same server: ``/healthz`` (the HTTP stack and nothing else)

It prints hits/s, p50/p99 latency and each rate's ratio to the reference, then waits
until every hit is in the event log and prints how long recording took after the last
answer.

    .venv/bin/python bench/tracking.py --hits 20000 --connections 32
"""

from __future__ import annotations

import argparse
import asyncio
import os
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import asyncpg

from postwire_common.addresses import Mailbox
from postwire_common.content import ContentStore, StoredContent
from postwire_common.crypto import Keyring, generate_key
from postwire_common.ids import new_id
from postwire_common.schemas import EventType, MailEvent
from postwire_common.tracking.choice import Tracking
from postwire_common.tracking.tokens import PURPOSE, Claim, Kind, TokenSigner, link_check
from postwire_events.store import EventsStore
from postwire_ingest.compose import Content, prepare
from postwire_testkit.infra import temp_database, temp_vhost
from postwire_testkit.platform import PlatformProcess

HTML = (
    "<html><body>"
    + "".join(
        f'<p>Item {n}: <a href="https://shop.example/item/{n}?utm=mail">see it</a></p>'
        for n in range(10)
    )
    + "</body></html>"
)


AGENT = "User-Agent: Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Thunderbird/128.0"


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))] if ordered else 0.0


class Connection:
    """GET on a persistent connection; reads status and a Content-Length body."""

    def __init__(self, port: int) -> None:
        self._port = port
        self._io: tuple[asyncio.StreamReader, asyncio.StreamWriter] | None = None

    async def get(self, path: str) -> int:
        if self._io is None:
            self._io = await asyncio.open_connection("127.0.0.1", self._port)
        reader, writer = self._io
        writer.write(f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n{AGENT}\r\n\r\n".encode())
        status = int((await reader.readline()).split()[1])
        length = 0
        while (line := await reader.readline()) not in (b"\r\n", b""):
            name, _, value = line.partition(b":")
            if name.strip().lower() == b"content-length":
                length = int(value)
        await reader.readexactly(length)
        return status

    async def close(self) -> None:
        if self._io is not None:
            self._io[1].close()


async def drive(
    port: int, paths: list[str], connections: int, expect: int
) -> tuple[float, list[float]]:
    queue = iter(paths)
    latencies: list[float] = []

    async def worker() -> None:
        connection = Connection(port)
        try:
            for path in queue:
                started = time.perf_counter()
                status = await connection.get(path)
                latencies.append(time.perf_counter() - started)
                if status != expect:
                    raise RuntimeError(f"{path}: {status}, expected {expect}")
        finally:
            await connection.close()

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(connections)))
    return len(paths) / (time.perf_counter() - started), latencies


async def seed(
    database_url: str, signer: TokenSigner, messages: int, base: str
) -> tuple[list[str], list[str]]:
    """One tracked content, ``messages`` request events; the pixel and click paths."""
    pool = await asyncpg.create_pool(database_url, min_size=1, max_size=4)
    assert pool is not None
    try:
        tenant, content_id, now = new_id(), new_id(), datetime.now(UTC)
        content = prepare(Mailbox("news@bench.example"), Content("Bench", html=HTML), now)
        tracking = Tracking(opens=True, clicks=True, base=base)
        await ContentStore(pool).put(
            content_id, tenant, StoredContent(content.head, content.body, tracking.to_json())
        )
        store = EventsStore(pool)
        env_ids = [new_id() for _ in range(messages)]
        for start in range(0, messages, 1000):
            await store.record_many(
                [
                    MailEvent(
                        event_id=f"{env_id}:request",
                        event=EventType.REQUEST,
                        env_id=env_id,
                        msg_id=f"<{env_id}@bench.example>",
                        tenant_id=tenant,
                        account="news@bench.example",
                        sender="news@bench.example",
                        rcpt=f"r{n}@example.org",
                        recv_time=now,
                        time=now,
                    )
                    for n, env_id in enumerate(env_ids[start : start + 1000], start)
                ]
            )
        pixels = [signer.url("", Claim(Kind.OPEN, tenant, e, content_id)) for e in env_ids]
        links = [link_check(f"https://shop.example/item/{n}?utm=mail") for n in range(10)]
        clicks = [
            signer.url("", Claim(Kind.CLICK, tenant, e, content_id, n % 10, links[n % 10]))
            for n, e in enumerate(env_ids)
        ]
        return pixels, clicks
    finally:
        await pool.close()


def migrate(env: dict[str, str]) -> None:
    command = [sys.executable, "-m", "postwire", "migrate"]
    subprocess.run(command, env={**os.environ, **env}, check=True, capture_output=True)  # noqa: S603


async def recorded(database_url: str, event: str) -> int:
    conn = await asyncpg.connect(database_url)
    try:
        count: int = await conn.fetchval(
            "SELECT count(*) FROM events.event_log WHERE event = $1", event
        )
        return count
    finally:
        await conn.close()


async def main(args: argparse.Namespace) -> None:
    key = generate_key()
    signer = TokenSigner(Keyring([key]).derived(PURPOSE))
    workdir = Path(tempfile.mkdtemp(prefix="postwire-bench-"))
    async with temp_database() as database_url:
        with temp_vhost() as broker_url:
            env = {
                "POSTWIRE_DATABASE_URL": database_url,
                "POSTWIRE_BROKER_URL": broker_url,
                "POSTWIRE_SECRET_KEYS": key,
                "POSTWIRE_SMTP_PORT": "0",
                "POSTWIRE_SMTPS_PORT": "0",
                "POSTWIRE_INBOUND_PORT": "0",
                "POSTWIRE_LOG_LEVEL": "WARNING",
            }
            await asyncio.to_thread(migrate, env)
            platform = PlatformProcess(["all"], env, workdir).start()
            try:
                print(f"seeding {args.messages} messages …", flush=True)
                pixels, clicks = await seed(database_url, signer, args.messages, "")
                hits = args.hits
                pick = [pixels[n % len(pixels)] for n in range(hits)]
                clicked = [clicks[n % len(clicks)] for n in range(hits)]
                forged = [p.replace("/t/o/", "/t/o/x") for p in pick]
                c = args.connections
                await drive(platform.port, ["/healthz"] * 500, c, 200)  # warm up
                figures = {
                    "reference /healthz": await drive(platform.port, ["/healthz"] * hits, c, 200),
                    "pixel (open)": await drive(platform.port, pick, c, 200),
                    "click (302)": await drive(platform.port, clicked, c, 302),
                    "forged pixel": await drive(platform.port, forged, c, 200),
                }
                last_answer = time.monotonic()
                for kind, want in (("open", hits), ("click", hits)):
                    while await recorded(database_url, kind) < want:
                        if time.monotonic() - last_answer > 300:
                            raise RuntimeError(f"{kind} events missing after 5 minutes")
                        await asyncio.sleep(0.2)
                drained = time.monotonic() - last_answer
            finally:
                platform.stop()
    reference = figures["reference /healthz"][0]
    print(f"\n{hits} hits per kind, {c} keep-alive connections, postwire run all (2 CPUs)\n")
    print(f"{'':22}{'hits/s':>10}{'ratio':>8}{'p50 ms':>9}{'p99 ms':>9}")
    for name, (rate, latencies) in figures.items():
        print(
            f"{name:22}{rate:10.0f}{rate / reference:8.2f}"
            f"{pct(latencies, 0.5) * 1000:9.1f}{pct(latencies, 0.99) * 1000:9.1f}"
        )
    print(f"\nevery open and click recorded in the event log {drained:.1f} s after the last answer")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--hits", type=int, default=20000, help="GETs per kind")
    parser.add_argument("--messages", type=int, default=5000, help="tracked messages")
    parser.add_argument("--connections", type=int, default=32, help="keep-alive connections")
    asyncio.run(main(parser.parse_args()))
