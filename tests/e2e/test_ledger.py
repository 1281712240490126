"""The ledger: during a steady load, every service is killed with SIGKILL in turn and
PostgreSQL is stopped for a while, really (``pg_ctlcluster``). Afterwards every message
that was answered 202 has reached the MX, has exactly one terminal result and status, and
was pushed to its webhook at least once.

The outage is shorter than in production (seconds, not an hour), but it is long enough
for every consumer to fail many times over: infrastructure failures are retried in place
and never count against a message's delivery limit, so the length does not change the
outcome. The services run as four processes, as deployed.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import shutil
import subprocess
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import asyncpg
import httpx
import pytest

from postwire_common.config import Settings
from postwire_common.schemas import EventBatch, EventType, MailEvent
from postwire_delivery.lanes import WORKERS_PER_CONNECTION
from postwire_testkit.api import Tenant, Urls, envelope
from postwire_testkit.dns import LoopbackDns
from postwire_testkit.http import HttpReceiver
from postwire_testkit.infra import temp_database, temp_vhost, unique_name
from postwire_testkit.platform import PlatformProcess
from postwire_testkit.smtp import SmtpSink
from postwire_testkit.wait import eventually

from .conftest import ADMIN_TOKEN, migrate, platform_env
from .test_reliability import publish_raw

SERVICES = ("events", "notifier", "delivery", "ingest")


def pg_cluster(action: str) -> None:
    version = sorted(p.name for p in Path("/etc/postgresql").iterdir())[-1]
    tool = shutil.which("pg_ctlcluster") or "/usr/bin/pg_ctlcluster"
    subprocess.run(  # noqa: S603
        [
            tool,
            "--skip-systemctl-redirect",
            version,
            "main",
            action,
            *(["-m", "fast"] if action == "stop" else []),
        ],
        check=True,
        capture_output=True,
        timeout=120,
    )


@pytest.fixture(scope="module")
def ledger_vhost() -> Iterator[str]:
    with temp_vhost() as url:
        yield url


@dataclass
class Deployment:
    env: dict[str, str]
    log_dir: Path
    database_url: str
    processes: dict[str, PlatformProcess] = field(default_factory=dict)

    def start(self, name: str) -> None:
        self.processes[name] = PlatformProcess([name], self.env, self.log_dir).start(timeout=90)

    def kill(self, name: str) -> None:
        self.processes[name].kill()

    @property
    def urls(self) -> Urls:
        return Urls(
            ingest=self.processes["ingest"].url,
            events=self.processes["events"].url,
            notifier=self.processes["notifier"].url,
        )


@pytest.fixture(scope="module")
async def deployment(
    ledger_vhost: str, dns: LoopbackDns, mx: SmtpSink, log_dir: Path
) -> AsyncIterator[Deployment]:
    async with temp_database() as database_url:
        env = {
            **platform_env(database_url, ledger_vhost, dns, mx),
            "POSTWIRE_DELIVERY_LEASE": "3s",
        }
        migrate(env)
        setup = Deployment(env, log_dir, database_url)
        for name in SERVICES:
            setup.start(name)
        try:
            yield setup
        finally:
            for process in setup.processes.values():
                process.stop()


@pytest.mark.outage
async def test_kills_and_a_database_outage_lose_nothing(
    deployment: Deployment, mx: SmtpSink, receiver: HttpReceiver
) -> None:
    name = unique_name("ledger")
    tenant = await Tenant.create(
        deployment.urls, ADMIN_TOKEN, name, f"{name.replace('_', '-')}.example"
    )
    path = f"/ledger-{name}"
    await tenant.add_webhook(receiver.url(path), ["delivered"])
    accepted: dict[str, str] = {}  # env_id -> rcpt, for every 202
    stop = asyncio.Event()
    sent = 0

    async def load() -> None:
        nonlocal sent
        while not stop.is_set():
            rcpts = [f"l{sent}-{i}.{name}@example.org" for i in range(2)]
            sent += 1
            with contextlib.suppress(Exception):  # refused or cut while ingest is down
                answer = await tenant.send(rcpts)
                if answer.status_code == 202:
                    for m in envelope(answer)["Result"]["messages"]:
                        accepted[m["env_id"]] = m["rcpt"]
            await asyncio.sleep(0.02)

    now = datetime.now(UTC)
    probe_id = unique_name("PROBE").upper()
    probe = EventBatch(
        events=[
            MailEvent(
                event_id=f"{probe_id}:request",
                event=EventType.REQUEST,
                env_id=probe_id,
                msg_id=f"<{probe_id}@probe.example>",
                tenant_id="probe",
                account="probe@probe.example",
                sender="probe@probe.example",
                rcpt="probe@example.org",
                recv_time=now,
                time=now,
            )
        ]
    )
    loaders = [asyncio.create_task(load()) for _ in range(3)]
    try:
        await eventually(lambda: len(accepted) >= 40, what="load running")
        for service in ("delivery", "events", "notifier", "ingest"):
            deployment.kill(service)
            await asyncio.sleep(0.5)
            deployment.start(service)
            await tenant.close()
            tenant.urls = deployment.urls  # a restarted process listens on a new port
            before = len(accepted)
            await eventually(lambda b=before: len(accepted) >= b + 20, within=60, what="load")
        pg_cluster("stop")
        try:
            # A bus message that arrives while PostgreSQL is down: both consumers fail on
            # it again and again, in place, and record it once the database is back.
            await publish_raw(
                deployment.env["POSTWIRE_BROKER_URL"], "postwire.events", "probe", probe
            )
            await asyncio.sleep(15)  # every service fails, retries, and waits
        finally:
            pg_cluster("start")
        before = len(accepted)
        await eventually(lambda: len(accepted) >= before + 40, within=90, what="load after")
    finally:
        stop.set()
        await asyncio.gather(*loaders)

    env_ids = list(accepted)

    def arrived() -> bool:
        return all(mx.for_rcpt(rcpt) for rcpt in accepted.values())

    await eventually(arrived, within=120, interval=0.5, what="every accepted message at the MX")
    copies = [len(mx.for_rcpt(rcpt)) for rcpt in accepted.values()]
    # Mail answered 250 in the instant before delivery was killed may arrive twice (its
    # result was not stored yet): at most what the lane had in flight, one per worker
    # (connections to the MX x workers per connection).
    in_flight = Settings.model_fields["delivery_connections_per_host"].default
    in_flight *= WORKERS_PER_CONNECTION
    duplicates = sum(copies) - len(copies)
    assert duplicates <= in_flight, f"{duplicates} duplicates, {in_flight} were in flight"

    conn = await asyncpg.connect(deployment.database_url)
    try:

        async def all_recorded() -> bool:
            delivered = await conn.fetchval(
                "SELECT count(*) FROM events.messages WHERE env_id = ANY($1::text[]) "
                "AND status = 'delivered'",
                env_ids,
            )
            return bool(delivered == len(env_ids))

        await eventually(all_recorded, within=60, interval=0.5, what="every status delivered")
        terminal = await conn.fetchval(
            "SELECT count(*) FROM delivery.results WHERE env_id = ANY($1::text[])", env_ids
        )
        assert terminal == len(env_ids), (terminal, len(env_ids))  # one terminal result each
        leftover = await conn.fetchval(
            "SELECT count(*) FROM delivery.queue WHERE env_id = ANY($1::text[])", env_ids
        )
        assert leftover == 0, leftover
        logged = await conn.fetchval(
            "SELECT count(*) FROM events.event_log WHERE env_id = ANY($1::text[]) "
            "AND event = 'delivered'",
            env_ids,
        )
        assert logged == len(env_ids), (logged, len(env_ids))  # one delivered event each
        recorded = await conn.fetchval(
            "SELECT count(*) FROM events.event_log WHERE env_id = $1", probe_id
        )
        assert recorded == 1, recorded
    finally:
        await conn.close()

    def pushed() -> bool:
        got = set()
        for post in receiver.posts(path):
            # A push cut off by the SIGKILL of the notifier arrives truncated; its retry
            # arrives whole.
            with contextlib.suppress(ValueError):
                got.add(post.json().get("env_id"))
        return set(env_ids) <= got

    await eventually(pushed, within=60, interval=0.5, what="every delivered event pushed")
    await tenant.close()
    retried = await infrastructure_retries(deployment.processes["events"].url)
    assert retried > 0, retried  # the probe was handled again in place, not requeued


async def infrastructure_retries(url: str) -> float:
    async with httpx.AsyncClient() as client:
        text = (await client.get(f"{url}/metrics")).text
    found = re.search(r"^postwire_infrastructure_retries_total ([0-9.e+]+)$", text, re.M)
    return float(found.group(1)) if found else 0.0
