"""End-to-end throughput and latency of postwire, next to raw references, in one run.

    .venv/bin/python bench/e2e.py --messages 2000 --concurrency 32

It sets up what it measures (a throwaway database and vhost, a DNS server and a catch-all
SMTP sink process on loopback, postwire as ``run all`` or as four processes with
``--split``), sends through ``POST /v1/messages`` and reports:

- accepted msgs/s: recipient messages answered 202 per second of the send phase
- delivered msgs/s: messages the sink received per second, first accept to last arrival
- accept latency p50/p99: the HTTP request, per request
- accept-to-delivered p50/p99: 202 received -> sink received, per message
- peak RSS of each postwire process

and, on the same machine, in the same run, two references:

- raw RabbitMQ: persistent messages of the same size published with pipelined
  confirms to a quorum queue and consumed with manual acks (aio-pika, no postwire)
- raw SMTP: the same sink fed by aiosmtplib over 8 reused connections (no postwire)
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

import aio_pika
import aiosmtplib
import httpx
from rawhttp import RawHttpConnection

from postwire_testkit.api import Tenant, Urls
from postwire_testkit.dns import LoopbackDns
from postwire_testkit.infra import temp_database, temp_vhost, unique_name
from postwire_testkit.platform import PlatformProcess
from postwire_testkit.sink import SinkProcess

ADMIN_TOKEN = "bench-admin-token-" + "x" * 16
LINE = "Hello, your order has shipped and will arrive on Thursday.\n"


def text_of(size: int) -> str:
    """A text body that makes a message of about ``size`` bytes with our headers (~600)."""
    return LINE * max(1, (size - 600) // len(LINE))


def pct(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


@dataclass
class Run:
    request_latencies: list[float] = field(default_factory=list)
    accepted_at: dict[str, float] = field(default_factory=dict)  # env_id -> unix time
    send_started: float = 0.0
    send_finished: float = 0.0


def wait_listening(port: int, what: str, within: float = 10.0) -> None:
    """Wait until something accepts connections on 127.0.0.1:``port``."""
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), 0.2):
                return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"{what} did not start")


async def drive(
    tenant: Tenant,
    total: int,
    per_request: int,
    concurrency: int,
    run: Run,
    rate: float = 0,
    text: str = LINE,
) -> None:
    requests = [
        [f"r{i + j}@bench.example" for j in range(per_request)]
        for i in range(0, total, per_request)
    ]
    queue: asyncio.Queue[tuple[int, list[str]]] = asyncio.Queue()
    for n, r in enumerate(requests):
        queue.put_nowait((n, r))
    url = urlsplit(tenant.urls.ingest)
    loop = asyncio.get_running_loop()
    start = loop.time()
    assert url.hostname
    assert url.port

    async def worker() -> None:
        connection = RawHttpConnection(url.hostname, url.port, tenant.api_user, tenant.api_key)
        try:
            while not queue.empty():
                n, rcpts = queue.get_nowait()
                if rate:  # open-loop pacing: request n goes out at start + n / rate
                    await asyncio.sleep(max(0.0, start + n / rate - loop.time()))
                body = {"from": tenant.sender, "to": rcpts, "subject": "Shipped", "text": text}
                started = time.perf_counter()
                status, answer = await connection.post_json("/v1/messages", body)
                run.request_latencies.append(time.perf_counter() - started)
                now = time.time()
                if status != 202:
                    raise RuntimeError(f"send failed: {status} {answer}")
                for m in answer["Result"]["messages"]:
                    run.accepted_at[m["env_id"]] = now
        finally:
            await connection.close()

    run.send_started = time.time()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    run.send_finished = time.time()


async def wait_delivered(sink: SinkProcess, env_ids: set[str], within: float) -> dict[str, float]:
    deadline = time.monotonic() + within
    while True:
        arrivals = sink.arrivals()
        if env_ids <= arrivals.keys() or time.monotonic() > deadline:
            return arrivals
        await asyncio.sleep(0.2)


async def raw_rabbitmq(broker_url: str, total: int, size: int) -> float:
    """Publish (pipelined confirms) and consume (manual ack) through a quorum queue."""
    connection = await aio_pika.connect(broker_url)
    async with connection:
        channel = await connection.channel(publisher_confirms=True)
        await channel.set_qos(prefetch_count=256)
        queue = await channel.declare_queue(
            "bench.raw", durable=True, arguments={"x-queue-type": "quorum"}
        )
        body = b"x" * size
        done = asyncio.Event()
        received = 0

        async def on_message(message: aio_pika.abc.AbstractIncomingMessage) -> None:
            nonlocal received
            await message.ack()
            received += 1
            if received >= total:
                done.set()

        await queue.consume(on_message)
        started = time.perf_counter()
        for offset in range(0, total, 500):
            await asyncio.gather(
                *(
                    channel.default_exchange.publish(
                        aio_pika.Message(body, delivery_mode=aio_pika.DeliveryMode.PERSISTENT),
                        routing_key="bench.raw",
                        mandatory=True,
                    )
                    for _ in range(min(500, total - offset))
                )
            )
        await asyncio.wait_for(done.wait(), 120)
        elapsed = time.perf_counter() - started
        await queue.delete(if_unused=False, if_empty=False)
    return total / elapsed


async def raw_smtp(port: int, total: int, size: int, connections: int = 8) -> float:
    message = (
        "From: a@bench.example\r\nTo: b@bench.example\r\nSubject: raw\r\n"
        "X-Postwire-Env-Id: raw\r\n\r\n" + "x" * size + "\r\n"
    ).encode()
    per_connection = total // connections

    async def one_connection() -> None:
        client = aiosmtplib.SMTP(hostname="127.0.0.1", port=port, start_tls=False)
        await client.connect()
        for _ in range(per_connection):
            await client.sendmail("a@bench.example", ["b@bench.example"], message)
        await client.quit()

    started = time.perf_counter()
    await asyncio.gather(*(one_connection() for _ in range(connections)))
    return per_connection * connections / (time.perf_counter() - started)


async def server_latency(url: str) -> str:
    """POST /v1/messages as the server timed it (its histogram; one worker's when run all
    has several)."""
    async with httpx.AsyncClient() as client:
        text = (await client.get(f"{url}/metrics")).text
    buckets = [
        (float(m.group(1)), float(m.group(2)))
        for m in re.finditer(
            r'^postwire_http_request_seconds_bucket\{le="([^"]+)",method="POST",'
            r'route="/v1/messages"\} ([0-9.e+]+)$',
            text,
            re.MULTILINE,
        )
    ]
    if not buckets or not buckets[-1][1]:
        return "(no histogram)"
    total = buckets[-1][1]
    share = [f"<= {le * 1000:g} ms: {count / total:.0%}" for le, count in buckets if le <= 0.1]
    return ", ".join(share)


def migrate(env: dict[str, str]) -> None:
    command = [sys.executable, "-m", "postwire", "migrate"]
    subprocess.run(command, env={**os.environ, **env}, check=True, capture_output=True)  # noqa: S603


def env_for(
    database_url: str, broker_url: str, dns: LoopbackDns, sink: SinkProcess
) -> dict[str, str]:
    return {
        "POSTWIRE_DATABASE_URL": database_url,
        "POSTWIRE_BROKER_URL": broker_url,
        "POSTWIRE_ADMIN_TOKEN": ADMIN_TOKEN,
        "POSTWIRE_DNS_NAMESERVERS": dns.nameserver,
        "POSTWIRE_DELIVERY_PORT": str(sink.port),
        "POSTWIRE_ALLOW_PRIVATE_TARGETS": "true",  # the MX sink is on loopback
        "POSTWIRE_HELO_NAME": "bench.test",
        "POSTWIRE_SMTP_PORT": "0",
        "POSTWIRE_SMTPS_PORT": "0",
        "POSTWIRE_INBOUND_PORT": "0",
        "POSTWIRE_LOG_LEVEL": "WARNING",
    }


def _setting(text: str) -> tuple[str, str]:
    name, sep, value = text.partition("=")
    if not sep or not name.startswith("POSTWIRE_"):
        raise argparse.ArgumentTypeError(f"{text!r}: expected POSTWIRE_NAME=VALUE")
    return name, value


async def main(args: argparse.Namespace) -> None:
    workdir = Path(tempfile.mkdtemp(prefix="postwire-bench-"))
    dns = LoopbackDns().start()
    dns.mail_domain("bench.example")
    sink = SinkProcess(workdir)
    processes: list[PlatformProcess] = []
    try:
        async with temp_database() as database_url:
            with temp_vhost() as broker_url:
                env = env_for(database_url, broker_url, dns, sink) | dict(args.set)
                await asyncio.to_thread(migrate, env)
                print(f"starting postwire ({'four processes' if args.split else 'run all'}) …")
                if args.split:
                    processes = [
                        PlatformProcess([name], env, workdir).start()
                        for name in ("events", "notifier", "delivery", "ingest")
                    ]
                    urls = Urls(processes[3].url, processes[0].url, processes[1].url)
                else:
                    processes = [PlatformProcess(["all"], env, workdir).start()]
                    urls = Urls.single(processes[0].url)
                tenant = await Tenant.create(
                    urls, ADMIN_TOKEN, unique_name("bench"), "shop.example"
                )

                warm = Run()
                await drive(tenant, 50, 1, 4, warm)
                await wait_delivered(sink, set(warm.accepted_at), 60)

                run = Run()
                pace = f", {args.rate:g} requests/s" if args.rate else ""
                print(
                    f"sending {args.messages} messages, {args.recipients} recipient(s) per "
                    f"request, up to {args.concurrency} requests in flight{pace} …"
                )
                await drive(
                    tenant,
                    args.messages,
                    args.recipients,
                    args.concurrency,
                    run,
                    args.rate,
                    text_of(args.size),
                )
                arrivals = await wait_delivered(sink, set(run.accepted_at), args.timeout)
                rss = {" ".join(p.services): p.peak_rss_mb() for p in processes}
                server_side = await server_latency(urls.ingest)
                await tenant.close()

                print("reference runs …")
                rabbit = await raw_rabbitmq(broker_url, args.messages, args.size)
                smtp = await raw_smtp(sink.port, args.messages, args.size)
    finally:
        for process in processes:
            process.stop()
        sink.stop()
        dns.stop()

    figures = report(args, run, arrivals, rss, rabbit, smtp)
    print(f"  server-side accept     {server_side}")
    if args.json:
        Path(args.json).write_text(json.dumps(figures))  # noqa: ASYNC240 - at the end


def spread(seconds: list[float]) -> str:
    return f"p50 {pct(seconds, 0.5) * 1000:7.1f} ms   p99 {pct(seconds, 0.99) * 1000:7.1f} ms"


def report(
    args: argparse.Namespace,
    run: Run,
    arrivals: dict[str, float],
    rss: dict[str, float | None],
    rabbit: float,
    smtp: float,
) -> dict[str, object]:
    sent = run.accepted_at
    delivered = {e: arrivals[e] for e in sent if e in arrivals}
    send_seconds = run.send_finished - run.send_started
    last = max(delivered.values()) if delivered else float("nan")
    to_delivery = [delivered[e] - sent[e] for e in delivered]
    ms = 1000.0
    print()
    print(f"postwire end to end ({'split' if args.split else 'all'}; {os.cpu_count()} CPUs)")
    print(f"  messages               {len(sent)} accepted, {len(delivered)} delivered")
    print(f"  accepted               {len(sent) / send_seconds:8.0f} msgs/s")
    print(f"  delivered              {len(delivered) / (last - run.send_started):8.0f} msgs/s")
    lat = run.request_latencies
    print(f"  accept latency         {spread(lat)}")
    slowest = max(to_delivery, default=0) * ms
    print(f"  accept -> delivered    {spread(to_delivery)}   max {slowest:7.1f} ms")
    for name, peak in rss.items():
        print(f"  peak RSS {name:<14}{peak or float('nan'):8.1f} MB")
    print("references (same machine, same run)")
    print(f"  raw RabbitMQ publish+consume, quorum, confirms {rabbit:8.0f} msgs/s")
    print(f"  raw SMTP to the same sink, 8 connections       {smtp:8.0f} msgs/s")
    if len(delivered) < len(sent):
        print(f"  WARNING: {len(sent) - len(delivered)} messages not delivered in time")
    mean = statistics.fmean(lat) if lat else 0
    print(f"  (mean accept latency {mean * ms:.1f} ms over {len(lat)} requests)")
    return {
        "accepted": len(sent),
        "delivered": len(delivered),
        "accepted_per_s": len(sent) / send_seconds,
        "delivered_per_s": len(delivered) / (last - run.send_started),
        "accept_p50_ms": pct(lat, 0.5) * ms,
        "accept_p99_ms": pct(lat, 0.99) * ms,
        "to_delivery_p50_ms": pct(to_delivery, 0.5) * ms,
        "to_delivery_p99_ms": pct(to_delivery, 0.99) * ms,
        "peak_rss_mb": rss,
        "raw_rabbitmq_per_s": rabbit,
        "raw_smtp_per_s": smtp,
    }


if __name__ == "__main__":
    parser = argparse.ArgumentParser(
        description="postwire end-to-end benchmark against raw RabbitMQ and SMTP references"
    )
    parser.add_argument("--messages", type=int, default=2000, help="recipient messages to send")
    parser.add_argument("--recipients", type=int, default=1, help="recipients per request")
    parser.add_argument("--concurrency", type=int, default=32, help="requests in flight")
    parser.add_argument("--split", action="store_true", help="run the services as 4 processes")
    parser.add_argument(
        "--rate", type=float, default=0, help="requests per second (default: as fast as possible)"
    )
    parser.add_argument("--timeout", type=float, default=300, help="seconds to wait for delivery")
    parser.add_argument("--size", type=int, default=2048, help="approximate message size, bytes")
    parser.add_argument("--json", help="also write the figures to this file as JSON")
    parser.add_argument(
        "--set",
        action="append",
        default=[],
        type=_setting,
        metavar="POSTWIRE_NAME=VALUE",
        help="a setting for postwire (repeatable), e.g. --set POSTWIRE_OUTBOX_LINGER=5ms",
    )
    asyncio.run(main(parser.parse_args()))
