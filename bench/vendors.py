"""What a vendor door costs: one send through each vendor's own client, against POST /v1/messages.

Each door is driven by the client its users run (the Aliyun and Tencent SDKs, plain HTTP
for SendCloud and Devino, as their documents show) with the same message, one after the
other against one ingest process. The figure that compares doors is the server's own
time per send, read from its request histogram (``postwire_http_request_seconds``): the
clients differ in their own cost (an SDK signs, builds models, uses ``requests``), the
server's time does not include it. It is printed as a ratio to the native door measured
in the same run.

    .venv/bin/python bench/vendors.py                 # 1000 sends per door at 150/s
    .venv/bin/python bench/vendors.py --sends 3000 --rate 0   # saturated (rates differ)
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
from alibabacloud_dm20151123 import models as dm_models
from alibabacloud_dm20151123.client import Client as DmClient
from alibabacloud_tea_openapi.models import Config as AliyunConfig
from tencentcloud.common import credential
from tencentcloud.common.profile.client_profile import ClientProfile
from tencentcloud.common.profile.http_profile import HttpProfile
from tencentcloud.ses.v20201002 import models as ses_models
from tencentcloud.ses.v20201002.ses_client import SesClient

from postwire_common.crypto import generate_key
from postwire_testkit.api import Tenant, Urls
from postwire_testkit.infra import temp_database, temp_vhost
from postwire_testkit.platform import PlatformProcess

ADMIN = "bench-admin-token-" + "x" * 16
SUBJECT = "Your order"
TEXT = "Thanks for your order. " * 40  # ~1 KB, as the other benchmarks' bodies
HTML = f"<p>{TEXT}</p>"

Send = Callable[[int], None]


def native(url: str, tenant: Tenant) -> Send:
    client = httpx.Client(base_url=url, auth=(tenant.api_user, tenant.api_key), timeout=30)
    body = {"from": tenant.sender, "subject": SUBJECT, "text": TEXT, "html": HTML}

    def send(n: int) -> None:
        answer = client.post("/v1/messages", json={**body, "to": f"u{n}@example.org"})
        assert answer.status_code == 202, answer.text

    return send


def aliyun(url: str, tenant: Tenant, algorithm: str | None = None) -> Send:
    config = AliyunConfig(
        access_key_id=tenant.api_user,
        access_key_secret=tenant.api_key,
        endpoint=url.removeprefix("http://"),
        protocol="http",
        signature_algorithm=algorithm,
    )
    client = DmClient(config)

    def send(n: int) -> None:
        client.single_send_mail(
            dm_models.SingleSendMailRequest(
                account_name=tenant.sender, address_type=1, reply_to_address=False,
                to_address=f"u{n}@example.org", subject=SUBJECT, html_body=HTML, text_body=TEXT,
            )
        )  # fmt: skip

    return send


def tencent(url: str, tenant: Tenant) -> Send:
    profile = ClientProfile(
        httpProfile=HttpProfile(endpoint=url.removeprefix("http://"), protocol="http")
    )
    client = SesClient(
        credential.Credential(tenant.api_user, tenant.api_key), "ap-guangzhou", profile
    )
    html, text = (base64.b64encode(v.encode()).decode() for v in (HTML, TEXT))

    def send(n: int) -> None:
        request = ses_models.SendEmailRequest()
        request.FromEmailAddress = tenant.sender
        request.Destination = [f"u{n}@example.org"]
        request.Subject = SUBJECT
        request.Simple = ses_models.Simple()
        request.Simple.Html, request.Simple.Text = html, text
        client.SendEmail(request)

    return send


def sendcloud(url: str, tenant: Tenant) -> Send:
    client = httpx.Client(base_url=url, timeout=30)
    form = {
        "apiUser": tenant.api_user, "apiKey": tenant.api_key, "from": tenant.sender,
        "subject": SUBJECT, "html": HTML, "plain": TEXT,
    }  # fmt: skip

    def send(n: int) -> None:
        answer = client.post("/apiv2/mail/send", data={**form, "to": f"u{n}@example.org"})
        assert answer.json()["result"] is True, answer.text

    return send


def devino(url: str, tenant: Tenant) -> Send:
    client = httpx.Client(base_url=url, auth=(tenant.api_user, tenant.api_key), timeout=30)
    body = {
        "Sender": {"Address": tenant.sender},
        "Subject": SUBJECT,
        "Body": {"Html": HTML, "PlainText": TEXT},
    }

    def send(n: int) -> None:
        answer = client.post(
            "/email/v1/Messages", json={**body, "Recipients": [{"Address": f"u{n}@example.org"}]}
        )
        assert answer.status_code == 200, answer.text

    return send


NATIVE = "native POST /v1/messages"
DOORS: dict[str, tuple[str, Callable[[str, Tenant], Send]]] = {
    NATIVE: ("/v1/messages", native),
    "Aliyun SingleSendMail (ACS3)": ("/", aliyun),
    "Aliyun SingleSendMail (RPC v2)": ("/", lambda u, t: aliyun(u, t, "v2")),
    "Tencent SendEmail (TC3)": ("/", tencent),
    "SendCloud mail/send": ("/apiv2/mail/send", sendcloud),
    "Devino POST /Messages": ("/email/v1/Messages", devino),
}


def migrate(env: dict[str, str]) -> None:
    command = [sys.executable, "-m", "postwire", "migrate"]
    subprocess.run(command, env={**os.environ, **env}, check=True, capture_output=True)  # noqa: S603


def server_time(url: str, route: str) -> tuple[float, float]:
    """(seconds, requests) the server has spent on POST ``route`` so far."""
    text = httpx.get(f"{url}/metrics", timeout=10).text
    found = {}
    for kind in ("sum", "count"):
        labels = f'{{method="POST",route="{route}"}}'
        pattern = rf"^postwire_http_request_seconds_{kind}{re.escape(labels)} (\S+)$"
        match = re.search(pattern, text, re.M)
        found[kind] = float(match[1]) if match else 0.0
    return found["sum"], found["count"]


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of process ``pid`` so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def drive(send: Send, sends: int, threads: int, offset: int, rate: float) -> float:
    """Sends per second of ``sends`` calls spread over ``threads``, the n-th not before
    n / ``rate`` seconds (0: as fast as they go)."""
    started = time.perf_counter()

    def paced(n: int) -> None:
        if rate:
            time.sleep(max(0.0, started + (n - offset) / rate - time.perf_counter()))
        send(n)

    with ThreadPoolExecutor(threads) as pool:
        list(pool.map(paced, range(offset, offset + sends)))
    return sends / (time.perf_counter() - started)


async def main(args: argparse.Namespace) -> None:
    workdir = Path(tempfile.mkdtemp(prefix="postwire-bench-"))
    async with temp_database() as database_url:
        with temp_vhost() as broker_url:
            env = {
                "POSTWIRE_DATABASE_URL": database_url,
                "POSTWIRE_BROKER_URL": broker_url,
                "POSTWIRE_SECRET_KEYS": generate_key(),
                "POSTWIRE_ADMIN_TOKEN": ADMIN,
                "POSTWIRE_PROCESSES": "1",  # one process: one histogram to read
                "POSTWIRE_SMTP_PORT": "0",
                "POSTWIRE_SMTPS_PORT": "0",
                "POSTWIRE_INBOUND_PORT": "0",
                "POSTWIRE_LOG_LEVEL": "WARNING",
            }
            await asyncio.to_thread(migrate, env)
            # Ingest alone: accepted messages wait in RabbitMQ, so every door is measured
            # without delivery's work of the doors before it.
            platform = PlatformProcess(["ingest"], env, workdir).start()
            try:
                tenant = await Tenant.create(
                    Urls.single(platform.url), ADMIN, "bench", "bench.example"
                )
                trials: dict[str, list[tuple[float, float, float]]] = {}
                offset = 0
                chosen = {n: d for n, d in DOORS.items() if n == NATIVE or args.only in n}
                sends = {name: make(platform.url, tenant) for name, (_, make) in chosen.items()}
                for send in sends.values():
                    drive(send, args.warmup, args.threads, offset, args.rate)
                    offset += args.warmup
                # Rounds over every door, so drift over the run (PostgreSQL's tables
                # growing, the machine's other load) falls on each door alike.
                for round_no in range(1, args.rounds + 1):
                    for name, send in sends.items():
                        route = chosen[name][0]
                        assert platform.pid is not None
                        before = server_time(platform.url, route)
                        cpu = cpu_seconds(platform.pid)
                        rate = drive(send, args.sends, args.threads, offset, args.rate)
                        cpu = cpu_seconds(platform.pid) - cpu
                        offset += args.sends
                        after = server_time(platform.url, route)
                        spent, count = after[0] - before[0], after[1] - before[1]
                        assert count == args.sends, f"{name}: {count} requests counted"
                        figures = (rate, cpu / count * 1000, spent / count * 1000)
                        trials.setdefault(name, []).append(figures)
                    print(f"  round {round_no} of {args.rounds} done", flush=True)
                await tenant.close()
            finally:
                platform.stop()
    # Each figure is the median of the door's rounds.
    results = {
        name: tuple(statistics.median(t[i] for t in runs) for i in range(3))
        for name, runs in trials.items()
    }
    reference = results[NATIVE][1]
    offered = f"{args.rate:.0f}/s offered" if args.rate else "as fast as they go"
    print(
        f"\n{args.sends} sends per door and round ({offered}), median of {args.rounds} rounds, "
        f"{args.threads} client threads, one ingest process\n"
    )
    print(f"{'':32}{'sends/s':>9}{'CPU ms':>8}{'ratio':>7}{'wall ms':>9}")
    for name, (rate, cpu_ms, wall_ms) in results.items():
        print(f"{name:32}{rate:9.0f}{cpu_ms:8.2f}{cpu_ms / reference:7.2f}{wall_ms:9.2f}")
    print("\nsends/s: what each client reached (its own cost included); CPU ms: the ingest")
    print("process's CPU time per send, ratio: over the native door's; wall ms: the server's")
    print("mean time per request, waiting for the CPU the clients share included.")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sends", type=int, default=1000, help="sends per door and round")
    parser.add_argument("--warmup", type=int, default=100, help="sends per door before measuring")
    parser.add_argument("--threads", type=int, default=8, help="client threads per door")
    parser.add_argument(
        "--rate",
        type=float,
        default=150,
        help="sends per second offered to every door (0: as fast as each goes); CPU per "
        "send falls as the rate rises (group commits grow), so doors compare at one rate",
    )
    parser.add_argument("--rounds", type=int, default=3, help="rounds over every door")
    parser.add_argument("--only", default="", help="doors whose name has this (and native)")
    asyncio.run(main(parser.parse_args()))
