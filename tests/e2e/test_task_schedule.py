"""A scheduled task lives in PostgreSQL, not in a process: it starts on time and exactly
once however many ingest processes run, still starts after every process that knew of
it has stopped, and a cancel racing its start either wins (nothing sent) or loses
(``not_available``, everything sent once), never both.

Every ingest process has a task runner, so the tests need to know every runner that
shares the tasks' database. The session platform (``run all``: a runner per worker)
would be one more, and one that cannot be stopped without breaking other modules; with
it, "a process started after the others stopped picks the task up" would hold even if
the new process did nothing. So this module has a platform of its own, as
``test_reliability.py`` does: its own database and vhost (the session platform never
sees these tasks or this bus), one process for events, notifier and delivery (no
runner), and ingest processes the tests start and stop: three runners in the first
test, two fresh ones in the second, two in the third. Mail still goes to the session SMTP
sink, to recipients no other test uses.

Which runner started a task is read from the processes' JSON logs (``postwire.ingest.
tasks``: "task started" with ``task_id``), and what was sent from ``ingest.messages``
(a row per accepted message) and the sink.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest

from postwire_testkit.api import Tenant, Urls, envelope
from postwire_testkit.dns import LoopbackDns
from postwire_testkit.infra import temp_database, temp_vhost, unique_name
from postwire_testkit.platform import PlatformProcess
from postwire_testkit.smtp import SmtpSink
from postwire_testkit.wait import eventually

from .conftest import ADMIN_TOKEN, migrate, platform_env

ON_TIME = 3.0  # runners poll every second; a due task starts within this of send_at


@dataclass
class Cluster:
    """The module's platform: a backend process and the ingest processes (runners)."""

    env: dict[str, str]
    log_dir: Path
    backend: PlatformProcess
    running: list[PlatformProcess] = field(default_factory=list)
    every: list[PlatformProcess] = field(default_factory=list)  # stopped ones too

    async def start_ingest(self, count: int = 1) -> list[PlatformProcess]:
        """``count`` new ingest processes, started together (most of a start is imports)."""
        made = [PlatformProcess(["ingest"], self.env, self.log_dir) for _ in range(count)]
        self.running += made  # stopped at the end even if another fails to start
        self.every += made
        await asyncio.gather(*(asyncio.to_thread(p.start) for p in made))
        return made

    async def ingest(self, count: int) -> list[PlatformProcess]:
        """At least ``count`` ingest processes running (reused across tests)."""
        await self.start_ingest(max(0, count - len(self.running)))
        return list(self.running)

    async def stop_ingest(self) -> None:
        """SIGTERM every running ingest process, together; each must exit cleanly."""
        stopping, self.running = self.running, []
        codes = await _stop(stopping)
        for process, code in zip(stopping, codes, strict=True):
            assert code == 0, f"ingest exited with {code}:\n{process.log_tail()}"

    def starts(self, task_id: str) -> list[PlatformProcess]:
        """The processes that logged "task started" for ``task_id``, once per line."""
        return [p for p in self.every for _ in range(_started_lines(p.log_path, task_id))]


async def _stop(processes: list[PlatformProcess]) -> list[int | None]:
    return list(await asyncio.gather(*(asyncio.to_thread(p.stop) for p in processes)))


def _started_lines(path: Path, task_id: str) -> int:
    count = 0
    for line in path.read_text(errors="replace").splitlines():
        if task_id not in line:
            continue
        try:
            entry = json.loads(line)
        except ValueError:  # a line being written
            continue
        if (entry.get("logger"), entry.get("msg"), entry.get("task_id")) == (
            "postwire.ingest.tasks", "task started", task_id
        ):  # fmt: skip
            count += 1
    return count


@pytest.fixture(scope="module")
async def cluster(dns: LoopbackDns, mx: SmtpSink, log_dir: Path) -> AsyncIterator[Cluster]:
    async with temp_database() as database_url:
        with temp_vhost() as broker_url:
            env = platform_env(database_url, broker_url, dns, mx)
            migrate(env)
            backend = PlatformProcess(["events", "notifier", "delivery"], env, log_dir)
            made = Cluster(env, log_dir, backend)
            try:
                # Three runners for the first test, started with the backend: a start is
                # mostly imports, and they overlap.
                await asyncio.gather(asyncio.to_thread(backend.start), made.start_ingest(3))
                yield made
            finally:
                codes = await _stop([*made.running, backend])
            assert codes == [0] * len(codes), f"a process did not exit cleanly: {codes}"


@pytest.fixture(scope="module")
async def db(cluster: Cluster) -> AsyncIterator[asyncpg.Connection]:
    conn = await asyncpg.connect(cluster.env["POSTWIRE_DATABASE_URL"])
    yield conn
    await conn.close()


@dataclass
class Account:
    """A tenant of the module's platform, reached through any of its ingest processes."""

    tenant: Tenant
    template_id: str
    _clients: dict[str, httpx.AsyncClient] = field(default_factory=dict)

    def via(self, process: PlatformProcess) -> httpx.AsyncClient:
        if process.url not in self._clients:
            self._clients[process.url] = httpx.AsyncClient(
                base_url=process.url,
                auth=httpx.BasicAuth(self.tenant.api_user, self.tenant.api_key),
                timeout=30,
            )
        return self._clients[process.url]

    async def close(self) -> None:
        for client in self._clients.values():
            await client.aclose()
        await self.tenant.close()


@pytest.fixture(scope="module")
async def account(cluster: Cluster) -> AsyncIterator[Account]:
    first = (await cluster.ingest(1))[0]
    name = unique_name("sched")
    urls = Urls(ingest=first.url, events=cluster.backend.url, notifier=cluster.backend.url)
    tenant = await Tenant.create(urls, ADMIN_TOKEN, name, f"{name.replace('_', '-')}.example")
    body = {"name": "reminder", "type": "trigger", "subject": "For {{name}}", "text": "Hi {{name}}"}
    made = await tenant.client("ingest").post("/v1/templates", json=body)
    made_account = Account(tenant, str(result(made, 201)["id"]))
    yield made_account
    await made_account.close()


def result(answer: httpx.Response, status: int = 200) -> Any:
    assert answer.status_code == status, answer.text
    return envelope(answer)["Result"]


def recipients(tag: str, count: int) -> list[str]:
    domains = ("example.org", "example.net", "example.com")
    return [f"r{n}.{tag}@{domains[n % len(domains)]}" for n in range(count)]


async def create(
    account: Account, via: PlatformProcess, to: list[str], send_at: datetime
) -> dict[str, Any]:
    body = {
        "name": "scheduled",
        "template_id": account.template_id,
        "from": account.tenant.sender,
        "send_at": send_at.isoformat(),
        "recipients": [{"address": a, "variables": {"name": a.split("@")[0]}} for a in to],
    }
    made: dict[str, Any] = result(await account.via(via).post("/v1/tasks", json=body), 201)
    assert (made["state"], made["total"], made["invalid"]) == ("scheduled", len(to), 0)
    assert made["started_at"] is None
    return made


async def settled(account: Account, via: PlatformProcess, task_id: str) -> dict[str, Any]:
    async def done() -> dict[str, Any] | None:
        task = result(await account.via(via).get(f"/v1/tasks/{task_id}"))
        return task if task["state"] in ("completed", "failed", "cancelled") else None

    found: dict[str, Any] = await eventually(done, within=30, what=f"task {task_id} to end")
    return found


def instant(value: str) -> datetime:
    return datetime.fromisoformat(value)


async def accepted(db: asyncpg.Connection, to: list[str]) -> dict[str, int]:
    """How many messages ingest accepted (committed) for each address."""
    rows = await db.fetch(
        "SELECT rcpt, count(*) AS n FROM ingest.messages WHERE rcpt = ANY($1::text[]) "
        "GROUP BY rcpt",
        to,
    )
    return {r["rcpt"]: r["n"] for r in rows}


async def each_mailed_once(mx: SmtpSink, db: asyncpg.Connection, to: list[str]) -> None:
    async def all_arrived() -> bool:
        return all(mx.for_rcpt(a) for a in to)

    arrived: bool = await eventually(all_arrived, within=30, what="every recipient's mail")
    assert arrived
    assert {a: len(mx.for_rcpt(a)) for a in to} == dict.fromkeys(to, 1)
    assert await accepted(db, to) == dict.fromkeys(to, 1)
    for address in to:
        assert mx.for_rcpt(address)[0].message["Subject"] == f"For {address.split('@')[0]}"


async def test_a_scheduled_task_starts_on_time_exactly_once_among_three_runners(
    cluster: Cluster, account: Account, db: asyncpg.Connection, mx: SmtpSink
) -> None:
    runners = await cluster.ingest(3)
    assert len(runners) == 3
    to = recipients(unique_name("once"), 8)
    send_at = datetime.now(UTC) + timedelta(seconds=4)
    made = await create(account, runners[1], to, send_at)
    assert instant(made["send_at"]) == send_at

    done = await settled(account, runners[2], made["id"])
    assert (done["state"], done["queued"], done["error"]) == ("completed", 8, None), done
    late = (instant(done["started_at"]) - send_at).total_seconds()
    assert 0 <= late <= ON_TIME, f"started {late:.2f}s after send_at"
    await each_mailed_once(mx, db, to)
    starts = cluster.starts(made["id"])
    assert len(starts) == 1, f"started by {[p.log_path.name for p in starts]}"
    assert starts[0] in runners


async def test_a_scheduled_task_survives_every_process_that_knew_it(
    cluster: Cluster, account: Account, db: asyncpg.Connection, mx: SmtpSink
) -> None:
    before = await cluster.ingest(2)
    to = recipients(unique_name("restart"), 5)
    send_at = datetime.now(UTC) + timedelta(seconds=6)
    made = await create(account, before[0], to, send_at)

    await cluster.stop_ingest()  # SIGTERM, exit 0: no runner is left
    assert datetime.now(UTC) < send_at, "stopping took too long for the test to mean anything"
    state = await db.fetchval("SELECT state FROM ingest.tasks WHERE id = $1", made["id"])
    assert state == "scheduled"
    after = await cluster.start_ingest(2)  # never saw the task: they read it from PostgreSQL
    ready = datetime.now(UTC)

    done = await settled(account, after[0], made["id"])
    assert (done["state"], done["queued"]) == ("completed", 5), done
    started = instant(done["started_at"])
    assert send_at <= started <= max(send_at, ready) + timedelta(seconds=ON_TIME), (
        f"send_at {send_at}, new process ready {ready}, started {started}"
    )
    await each_mailed_once(mx, db, to)
    starts = cluster.starts(made["id"])
    assert len(starts) == 1, f"started by {[p.log_path.name for p in starts]}"
    assert starts[0] in after


@dataclass
class Race:
    task_id: str
    to: list[str]
    via: PlatformProcess
    answer: httpx.Response | None = None


async def test_a_cancel_racing_the_start_either_wins_or_is_refused_never_both(
    cluster: Cluster, account: Account, db: asyncpg.Connection, mx: SmtpSink
) -> None:
    runners = await cluster.ingest(2)
    tag = unique_name("race")
    send_at = datetime.now(UTC) + timedelta(seconds=3)
    races = []
    for n in range(10):
        to = recipients(f"{tag}.{n}", 2)
        made = await create(account, runners[n % 2], to, send_at)
        races.append(Race(made["id"], to, runners[(n + 1) % 2]))
    # Cancels from well before send_at (they win) to well after (a runner has claimed
    # the task), most inside the second in which a runner's poll claims the due tasks.
    offsets = [-0.6 + 2.6 * n / 9 for n in range(10)]
    due = time.monotonic() + (send_at - datetime.now(UTC)).total_seconds()

    async def cancel(race: Race, offset: float) -> None:
        await asyncio.sleep(max(0.0, due + offset - time.monotonic()))
        race.answer = await account.via(race.via).put(
            f"/v1/tasks/{race.task_id}/state", json={"state": "cancelled"}
        )

    await asyncio.gather(*(cancel(r, o) for r, o in zip(races, offsets, strict=True)))

    ended = [await settled(account, runners[0], r.task_id) for r in races]
    sent = [r for r, task in zip(races, ended, strict=True) if task["state"] == "completed"]
    for race in sent:  # by then, a cancelled task that sent would have been accepted too
        await each_mailed_once(mx, db, race.to)
    for race, task in zip(races, ended, strict=True):
        assert race.answer is not None
        starts = len(cluster.starts(race.task_id))
        if race.answer.status_code == 200:
            assert result(race.answer)["state"] == "cancelled"
            assert (task["state"], task["started_at"], task["queued"], starts) == (
                "cancelled", None, 0, 0
            ), task  # fmt: skip
            assert await accepted(db, race.to) == {}
            assert [mx.for_rcpt(a) for a in race.to] == [[], []]
        else:
            answer = (race.answer.status_code, envelope(race.answer)["Code"])
            assert answer == (400, "not_available"), race.answer.text
            assert (task["state"], task["queued"], starts) == ("completed", 2, 1), task
    outcomes = sorted(task["state"] for task in ended)
    assert set(outcomes) == {"cancelled", "completed"}, f"no race happened: {outcomes}"
