"""Fan-out of event rules through a topic: HTTP subscriptions and queues, with and without
hanging endpoints, in one run.

    .venv/bin/python bench/fanout.py --quick                 # ~4 minutes
    .venv/bin/python bench/fanout.py --messages 300 --json fanout.json

It sets up what ``e2e.py`` sets up (a throwaway database and vhost, a DNS server and the
SMTP sink on loopback, ``postwire run all``) plus a push receiver process
(``bench/pushsink.py``: a minimal asyncio HTTP/1.1 server logging each POST's arrival and
the ``env_id`` of its SIMPLIFIED body). Then, for each size N of ``--endpoints`` (default
1, 10, 100), a fresh account gets:

- a topic with N HTTP subscriptions on loopback (SIMPLIFIED, BACKOFF_RETRY), one path of
  the receiver each, and 10 queue subscriptions ``queue:q0`` … ``queue:q9`` (on a second
  topic when N + 10 would pass the 100 subscriptions a topic may have), each queue drained
  by a receive (16, long poll) / batch delete loop;
- an event rule ``Deliver:Request`` -> ``topic:<name>``: every accepted message is one
  event, pushed to every endpoint and queued in every queue, without waiting for SMTP.

It sends M messages through ``POST /v1/messages`` (open loop, ``--rate`` requests/s) and
waits until every healthy endpoint and queue has every event. Then the same for N >= 10
with one endpoint in ten hanging (the receiver answers those only after 30 s, past the
webhook timeout, 3 s by default) and compares the healthy endpoints' p99 with the run of
the same N without hanging endpoints (target: ratio <= 1.2).

Figures per run: pushes/s in total and per endpoint (median and slowest endpoint), events
arriving first accept -> last arrival; latency 202 received -> push arrived, p50/p99 over
all (endpoint, event) pairs and the worst endpoint's p99; the same for the queues (202 ->
received by the drain loop, which long-polls: the server looks every 200 ms).
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from e2e import ADMIN_TOKEN, Run, drive, env_for, migrate, pct, wait_listening

from postwire_testkit.api import Tenant, Urls
from postwire_testkit.dns import LoopbackDns
from postwire_testkit.infra import temp_database, temp_vhost, unique_name
from postwire_testkit.platform import PlatformProcess
from postwire_testkit.sink import SinkProcess
from postwire_testkit.smtp import free_port

MAX_SUBSCRIPTIONS = 100  # per topic
HERE = Path(__file__).resolve().parent


class ApiConnection:
    """A keep-alive HTTP/1.1 client for the queue loops (httpx costs as much CPU as the
    server it talks to; see rawhttp.py)."""

    def __init__(self, base_url: str, user: str, key: str) -> None:
        url = urlsplit(base_url)
        assert url.hostname
        assert url.port
        self._host, self._port = url.hostname, url.port
        token = base64.b64encode(f"{user}:{key}".encode()).decode()
        self._auth = f"Authorization: Basic {token}\r\n"
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None
        self._used = 0.0

    async def call(self, method: str, path: str, body: object = None) -> tuple[int, Any]:
        if self._writer is not None and time.monotonic() - self._used > 2:
            await self.close()  # the server closes idle keep-alive connections (5 s)
        self._used = time.monotonic()
        if self._writer is None:
            self._reader, self._writer = await asyncio.open_connection(self._host, self._port)
        assert self._reader is not None
        payload = b"" if body is None else json.dumps(body).encode()
        kind = "Content-Type: application/json\r\n" if body is not None else ""
        head = (
            f"{method} {path} HTTP/1.1\r\nHost: {self._host}\r\n{self._auth}{kind}"
            f"Content-Length: {len(payload)}\r\n\r\n"
        ).encode()
        self._writer.write(head + payload)
        status = int((await self._reader.readline()).split()[1])
        length = 0
        while (line := await self._reader.readline()) not in (b"\r\n", b""):
            name, _, value = line.partition(b":")
            if name.strip().lower() == b"content-length":
                length = int(value)
        data = await self._reader.readexactly(length)
        return status, json.loads(data) if data else None

    async def close(self) -> None:
        if self._writer is not None:
            writer, self._writer = self._writer, None
            writer.close()
            with contextlib.suppress(OSError):
                await writer.wait_closed()


class PushSink:
    """The HTTP push receiver as a separate process, logging arrivals to a file."""

    def __init__(self, workdir: Path) -> None:
        self.port = free_port()
        self.log = workdir / "pushes.tsv"
        self.log.touch()
        self._offset = 0
        self._partial = b""
        # path -> env_id -> first arrival (unix time); attempts per path (retries too)
        self.arrivals: dict[str, dict[str, float]] = defaultdict(dict)
        self.attempts: dict[str, int] = defaultdict(int)
        self._proc = subprocess.Popen(  # noqa: S603 - our own script
            [sys.executable, str(HERE / "pushsink.py"), "--port", str(self.port),
             "--log", str(self.log)],
        )  # fmt: skip
        wait_listening(self.port, "the push receiver")

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def read(self) -> None:
        """Take in the lines logged since the last call."""
        with self.log.open("rb") as log:
            log.seek(self._offset)
            data = self._partial + log.read()
        self._offset += len(data) - len(self._partial)
        *lines, self._partial = data.split(b"\n")
        for line in lines:
            at, path, env_id = line.decode().split("\t")
            self.attempts[path] += 1
            self.arrivals[path].setdefault(env_id, float(at))

    def stop(self) -> None:
        self._proc.terminate()
        self._proc.wait(10)


@dataclass
class Case:
    endpoints: int
    hanging: int
    queues: int
    index: int

    @property
    def label(self) -> str:
        return f"N={self.endpoints}" + (f", {self.hanging} hanging" if self.hanging else "")

    def paths(self) -> list[str]:
        """One receiver path per endpoint; every tenth (the 10th, 20th, …) hangs."""
        hang_every = self.endpoints // self.hanging if self.hanging else 0
        return [
            f"/p{self.index}/{'h' if hang_every and (i + 1) % hang_every == 0 else 'e'}{i}"
            for i in range(self.endpoints)
        ]


@dataclass
class Outcome:
    case: Case
    run: Run = field(default_factory=Run)
    queue_arrivals: dict[str, dict[str, float]] = field(default_factory=dict)
    figures: dict[str, Any] = field(default_factory=dict)


async def ok(answer: tuple[int, Any], expected: int = 201) -> Any:
    status, body = answer
    if status != expected:
        raise RuntimeError(f"expected {expected}, got {status}: {body}")
    return body["Result"] if body else None


async def set_up(api: ApiConnection, case: Case, sink: PushSink) -> None:
    """Queues, topic(s), subscriptions and the event rule(s) of one case."""
    for q in range(case.queues):
        await ok(await api.call("POST", "/v1/queues", {"name": f"q{q}"}))
    http_topic = "fan"
    queue_topic = "fan" if case.endpoints + case.queues <= MAX_SUBSCRIPTIONS else "fan-q"
    for topic in dict.fromkeys((http_topic, queue_topic)):
        await ok(await api.call("POST", "/v1/topics", {"name": topic}))
    subs = [(http_topic, f"s{i}", sink.url(p)) for i, p in enumerate(case.paths())]
    subs += [(queue_topic, f"q{q}", f"queue:q{q}") for q in range(case.queues)]
    for topic, name, endpoint in subs:
        body = {"name": name, "endpoint": endpoint, "content_format": "SIMPLIFIED"}
        await ok(await api.call("POST", f"/v1/topics/{topic}/subscriptions", body))
    for topic in dict.fromkeys((http_topic, queue_topic)):
        rule = {"name": topic, "event_types": ["Deliver:Request"], "endpoints": [f"topic:{topic}"]}
        await ok(await api.call("POST", "/v1/event-rules", rule))


async def tear_down(api: ApiConnection) -> None:
    """Drop what a case made, so its pushes (a hanging endpoint's retries) stop."""
    for topic in ("fan", "fan-q"):
        await api.call("DELETE", f"/v1/event-rules/{topic}")
        await api.call("DELETE", f"/v1/topics/{topic}")


async def drain(
    tenant: Tenant, queue: str, found: dict[str, float], expected: int, stop: asyncio.Event
) -> None:
    """Receive (16, long poll 1 s) and batch-delete until ``expected`` events or ``stop``."""
    api = ApiConnection(tenant.urls.notifier, tenant.api_user, tenant.api_key)
    try:
        while len(found) < expected and not stop.is_set():
            got = await ok(
                await api.call(
                    "POST", f"/v1/queues/{queue}/receive", {"max": 16, "wait_seconds": 1}
                ),
                200,
            )
            now = time.time()
            for message in got:
                body: str = message["body"]
                env_id = body[7 : body.find("&")] if body.startswith("env_id=") else "-"
                found.setdefault(env_id, now)
            if got:  # one batch acknowledge for what one receive returned
                handles = [m["receipt_handle"] for m in got]
                path = f"/v1/queues/{queue}/messages"
                await ok(await api.call("DELETE", path, {"receipt_handles": handles}), 200)
    finally:
        await api.close()


async def run_case(urls: Urls, case: Case, sink: PushSink, args: argparse.Namespace) -> Outcome:
    tenant = await Tenant.create(urls, ADMIN_TOKEN, unique_name("fan"), f"fan{case.index}.example")
    api = ApiConnection(urls.notifier, tenant.api_user, tenant.api_key)
    outcome = Outcome(case)
    try:
        await set_up(api, case, sink)
        healthy = [p for p in case.paths() if "/e" in p]
        stop = asyncio.Event()
        queues: dict[str, dict[str, float]] = {f"q{q}": {} for q in range(case.queues)}
        drains = [
            asyncio.create_task(drain(tenant, q, found, args.messages, stop))
            for q, found in queues.items()
        ]
        print(
            f"[{case.label}] {len(healthy)} healthy + {case.hanging} hanging endpoints, "
            f"{case.queues} queues: sending {args.messages} messages at "
            f"{args.rate:g} requests/s …",
            flush=True,
        )
        # Each connection must be used at least every 2 s: the server closes idle ones after
        # 5 s and the load generator's client does not reconnect.
        concurrency = args.concurrency
        if args.rate:
            concurrency = max(1, min(concurrency, int(args.rate * 2)))
        sending = asyncio.create_task(
            drive(tenant, args.messages, 1, concurrency, outcome.run, args.rate)
        )
        deadline = time.monotonic() + args.timeout
        expected = args.messages * len(healthy)
        while True:
            await asyncio.sleep(2)
            sink.read()
            accepted = outcome.run.accepted_at
            pushed = sum(len(accepted.keys() & sink.arrivals[p].keys()) for p in healthy)
            queued = sum(len(found) for found in queues.values())
            hung = sum(sink.attempts[p] for p in case.paths() if "/h" in p)
            print(
                f"  accepted {len(accepted):5d}/{args.messages}   pushes {pushed:6d}/{expected}"
                f"   queued {queued:5d}/{args.messages * case.queues}"
                + (f"   hanging attempts {hung}" if case.hanging else ""),
                flush=True,
            )
            if sending.done() and sending.exception():
                break
            done = sending.done() and pushed >= expected
            if (done and all(t.done() for t in drains)) or time.monotonic() > deadline:
                break
        if sending.done() and sending.exception():
            raise RuntimeError("sending failed") from sending.exception()
        stop.set()
        await asyncio.gather(*drains, return_exceptions=True)
        outcome.queue_arrivals = queues
        outcome.figures = figures_of(outcome, sink, healthy)
        await tear_down(api)
    finally:
        await api.close()
        await tenant.close()
    return outcome


def figures_of(outcome: Outcome, sink: PushSink, healthy: list[str]) -> dict[str, Any]:
    run, case = outcome.run, outcome.case
    accepted = run.accepted_at
    start = run.send_started
    ms = 1000.0
    latencies: list[float] = []
    per_endpoint_rate: list[float] = []
    endpoint_p99: list[float] = []
    last = start
    pushed = 0
    for path in healthy:
        got = {e: t for e, t in sink.arrivals[path].items() if e in accepted}
        lat = [t - accepted[e] for e, t in got.items()]
        latencies += lat
        pushed += len(got)
        if got:
            end = max(got.values())
            last = max(last, end)
            per_endpoint_rate.append(len(got) / (end - start))
            endpoint_p99.append(pct(lat, 0.99))
    q_lat = [t - accepted[e] for f in outcome.queue_arrivals.values() for e, t in f.items()]
    q_last = max((t for f in outcome.queue_arrivals.values() for t in f.values()), default=start)
    hanging = [p for p in case.paths() if "/h" in p]
    return {
        "endpoints": case.endpoints,
        "hanging": case.hanging,
        "queues": case.queues,
        "messages": len(accepted),
        "send_per_s": len(accepted) / (run.send_finished - start),
        "pushes": pushed,
        "pushes_expected": len(accepted) * len(healthy),
        "pushes_per_s": pushed / (last - start) if last > start else 0.0,
        "endpoint_per_s_median": statistics.median(per_endpoint_rate or [0.0]),
        "endpoint_per_s_min": min(per_endpoint_rate or [0.0]),
        "push_p50_ms": pct(latencies, 0.5) * ms,
        "push_p99_ms": pct(latencies, 0.99) * ms,
        "push_max_ms": max(latencies, default=float("nan")) * ms,
        "worst_endpoint_p99_ms": max(endpoint_p99, default=float("nan")) * ms,
        "queued": len(q_lat),
        "queued_per_s": len(q_lat) / (q_last - start) if q_last > start else 0.0,
        "queue_p50_ms": pct(q_lat, 0.5) * ms,
        "queue_p99_ms": pct(q_lat, 0.99) * ms,
        "hanging_attempts": sum(sink.attempts[p] for p in hanging),
    }


def report(outcomes: list[Outcome], args: argparse.Namespace) -> dict[str, Any]:
    base = {o.case.endpoints: o.figures for o in outcomes if not o.case.hanging}
    print()
    print(
        f"fan-out, {args.messages} messages at {args.rate:g} requests/s, Deliver:Request rule, "
        f"{os.cpu_count()} CPUs"
    )
    head = (
        f"{'case':<18}{'pushes':>13}{'push/s':>8}{'per endpoint/s':>16}{'p50 ms':>9}"
        f"{'p99 ms':>9}{'worst p99':>10}{'p99 ratio':>10}{'queue/s':>9}{'queue p50/p99 ms':>18}"
    )
    print(head)
    print("-" * len(head))
    rows = []
    for o in outcomes:
        f = o.figures
        ratio = None
        if o.case.hanging and o.case.endpoints in base:
            ratio = f["push_p99_ms"] / base[o.case.endpoints]["push_p99_ms"]
        f["p99_ratio_to_no_hang"] = ratio
        pushes = f"{f['pushes']}/{f['pushes_expected']}"
        per_endpoint = f"{f['endpoint_per_s_median']:.1f} / {f['endpoint_per_s_min']:.1f}"
        queue = f"{f['queue_p50_ms']:.0f} / {f['queue_p99_ms']:.0f}"
        print(
            f"{o.case.label:<18}{pushes:>13}{f['pushes_per_s']:8.0f}{per_endpoint:>16}"
            f"{f['push_p50_ms']:9.0f}{f['push_p99_ms']:9.0f}{f['worst_endpoint_p99_ms']:10.0f}"
            f"{'' if ratio is None else f'{ratio:.2f}':>10}{f['queued_per_s']:9.0f}{queue:>18}"
        )
        rows.append(f)
    print()
    print("pushes: healthy endpoints' pushes that arrived / expected; push/s: all of them,")
    print("first accept -> last arrival; per endpoint/s: median / slowest endpoint; p50/p99:")
    print("202 -> push arrived over every (endpoint, event); worst p99: the worst endpoint's;")
    print("p99 ratio: healthy endpoints' p99 with hanging ones / without (target <= 1.2);")
    print("queue/s and queue p50/p99: the same for events received from the queues.")
    for o in outcomes:
        f = o.figures
        if f["pushes"] < f["pushes_expected"] or f["queued"] < f["messages"] * o.case.queues:
            print(f"WARNING: {o.case.label}: not every push or queued event arrived in time")
        if o.case.hanging:
            print(f"{o.case.label}: {f['hanging_attempts']} attempts reached hanging endpoints")
    return {"messages": args.messages, "rate": args.rate, "cases": rows}


async def main(args: argparse.Namespace) -> None:
    workdir = Path(tempfile.mkdtemp(prefix="postwire-fanout-"))
    dns = LoopbackDns().start()
    dns.mail_domain("bench.example")
    sink = SinkProcess(workdir)
    pushsink = PushSink(workdir)
    cases = [Case(n, 0, args.queues, i) for i, n in enumerate(args.endpoints)]
    cases += [
        Case(n, n // 10, args.queues, len(cases) + i)
        for i, n in enumerate(n for n in args.endpoints if n >= 10)
    ]
    process: PlatformProcess | None = None
    outcomes: list[Outcome] = []
    try:
        async with temp_database() as database_url:
            with temp_vhost() as broker_url:
                env = env_for(database_url, broker_url, dns, sink)
                env["POSTWIRE_ALLOW_PRIVATE_WEBHOOKS"] = "true"  # the receiver is on loopback
                env |= dict(args.set)
                await asyncio.to_thread(migrate, env)
                print(f"starting postwire (run all), logs in {workdir} …", flush=True)
                process = PlatformProcess(["all"], env, workdir).start()
                urls = Urls.single(process.url)
                print("warm-up: 1 endpoint, 20 messages (not reported) …", flush=True)
                warm = argparse.Namespace(**{**vars(args), "messages": 20})
                await run_case(urls, Case(1, 0, 1, len(cases)), pushsink, warm)
                for case in cases:
                    outcomes.append(await run_case(urls, case, pushsink, args))
                    await asyncio.sleep(args.pause)
    finally:
        if process is not None:
            process.stop()
        pushsink.stop()
        sink.stop()
        dns.stop()
    figures = report(outcomes, args)
    if args.json:
        Path(args.json).write_text(json.dumps(figures, indent=1))  # noqa: ASYNC240 - at the end


def _setting(text: str) -> tuple[str, str]:
    name, sep, value = text.partition("=")
    if not sep or not name.startswith("POSTWIRE_"):
        raise argparse.ArgumentTypeError(f"{text!r}: expected POSTWIRE_NAME=VALUE")
    return name, value


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description="Fan-out benchmark: an event rule (Deliver:Request) -> a topic -> N HTTP "
        "endpoints on loopback and 10 queues; pushes/s and 202 -> push latency, then "
        "the same with one endpoint in ten hanging (healthy endpoints' p99 ratio).",
        epilog="Needs RabbitMQ and PostgreSQL running (as scripts/test does). Example: "
        ".venv/bin/python bench/fanout.py --quick --json /tmp/fanout.json",
    )
    parser.add_argument(
        "--messages", type=int, default=300, help="messages (events) per case (default 300)"
    )
    parser.add_argument(
        "--quick", action="store_true", help="60 messages per case (overrides --messages)"
    )
    parser.add_argument(
        "--endpoints",
        type=lambda s: [int(n) for n in s.split(",")],
        default=[1, 10, 100],
        help="comma list of HTTP endpoint counts (default 1,10,100); those >= 10 are run "
        "again with one endpoint in ten hanging",
    )
    parser.add_argument("--queues", type=int, default=10, help="queues subscribed (default 10)")
    parser.add_argument(
        "--rate", type=float, default=20, help="requests per second, open loop (default 20)"
    )
    parser.add_argument("--concurrency", type=int, default=8, help="requests in flight at most")
    parser.add_argument(
        "--timeout", type=float, default=300, help="seconds a case may take after it starts"
    )
    parser.add_argument("--pause", type=float, default=3, help="seconds between cases")
    parser.add_argument("--json", help="also write the figures to this file as JSON")
    parser.add_argument(
        "--set",
        action="append",
        default=[],
        type=_setting,
        metavar="POSTWIRE_NAME=VALUE",
        help="a setting for postwire (repeatable), e.g. --set POSTWIRE_WEBHOOK_TIMEOUT=5",
    )
    args = parser.parse_args(argv)
    if args.quick:
        args.messages = 60
    if any(n < 1 or n > MAX_SUBSCRIPTIONS for n in args.endpoints):
        parser.error(f"--endpoints: each count must be 1-{MAX_SUBSCRIPTIONS}")
    return args


if __name__ == "__main__":
    asyncio.run(main(parse_args()))
