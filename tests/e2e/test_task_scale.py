"""100,000-row tasks, from a CSV and from an XLSX file, expanded and delivered to a
loopback MX, with ingest's memory flat in the row count.

A platform of its own (four processes, so ingest's memory is its own figure; its own
database and vhost) delivers into a catch-all SMTP sink process that only logs arrivals
(keeping 200,000 messages in the test process would measure the test, not postwire).
A 10,000-row task runs first: ingest's peak RSS while it runs is the baseline, and the
100,000-row tasks may not raise it by more than a small constant. Reading a whole file,
or a set of its addresses, into memory would add tens of megabytes at 100,000 rows.
"""

from __future__ import annotations

import asyncio
import csv
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from openpyxl import Workbook

from postwire_testkit.api import Tenant, Urls, envelope
from postwire_testkit.dns import LoopbackDns
from postwire_testkit.infra import temp_database, temp_vhost, unique_name
from postwire_testkit.platform import PlatformProcess, RssPeaks
from postwire_testkit.sink import SinkProcess

from .conftest import ADMIN_TOKEN, migrate, platform_env

ROWS = 100_000
BASELINE_ROWS = 10_000
FLAT_MB = 25.0  # ingest's peak may grow this much from 10,000 to 100,000 rows
SERVICES = ("events", "notifier", "delivery", "ingest")


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("task-files")
    header = ["address", "name"]

    def rows(count: int, tag: str) -> Iterator[list[str]]:
        return ([f"{tag}{n}@example.org", f"Customer {n}"] for n in range(count))

    made: dict[str, Path] = {}
    for name, count, tag in (("baseline.csv", BASELINE_ROWS, "s"), ("big.csv", ROWS, "c")):
        made[name] = folder / name
        with made[name].open("w", newline="") as out:
            writer = csv.writer(out)
            writer.writerow(header)
            writer.writerows(rows(count, tag))
    book = Workbook(write_only=True)
    sheet = book.create_sheet()
    sheet.append(header)
    for row in rows(ROWS, "x"):
        sheet.append(row)
    made["big.xlsx"] = folder / "big.xlsx"
    book.save(made["big.xlsx"])
    return made


@pytest.fixture(scope="module")
async def scale_platform(
    dns: LoopbackDns, log_dir: Path, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[tuple[list[PlatformProcess], SinkProcess]]:
    sink = SinkProcess(tmp_path_factory.mktemp("scale-sink"))
    processes: list[PlatformProcess] = []
    try:
        async with temp_database() as database_url:
            with temp_vhost() as broker_url:
                env = platform_env(database_url, broker_url, dns, sink)  # type: ignore[arg-type]
                env["POSTWIRE_LOG_LEVEL"] = "WARNING"
                migrate(env)
                for name in SERVICES:
                    processes.append(PlatformProcess([name], env, log_dir).start(timeout=90))
                yield processes, sink
    finally:
        for process in processes:
            process.stop()
        sink.stop()


async def run_task(
    client: httpx.AsyncClient, tenant: Tenant, template_id: str, path: Path, sink: SinkProcess
) -> dict[str, Any]:
    before = sink.count()
    form = {"name": path.name, "template_id": template_id, "from": tenant.sender}
    with path.open("rb") as data:
        made = await client.post("/v1/tasks", data=form, files={"file": (path.name, data)})
    assert made.status_code == 201, made.text
    task_id = envelope(made)["Result"]["id"]
    deadline = time.monotonic() + 900
    while True:
        shown = await client.get(f"/v1/tasks/{task_id}")
        assert shown.status_code == 200, shown.text
        task: dict[str, Any] = envelope(shown)["Result"]
        assert task["state"] not in ("failed", "cancelled"), task
        if task["state"] == "completed" and sink.count() - before >= task["queued"]:
            return task
        assert time.monotonic() < deadline, f"not delivered in time: {task}"
        await asyncio.sleep(1)


@pytest.mark.timeout(1800)  # 210,000 DKIM-signed messages on two cores: about 10 minutes
async def test_100000_row_csv_and_xlsx_tasks_are_delivered_with_flat_memory(
    scale_platform: tuple[list[PlatformProcess], SinkProcess], files: dict[str, Path]
) -> None:
    processes, sink = scale_platform
    ingest = processes[3]
    name = unique_name("scale")
    tenant = await Tenant.create(
        Urls(ingest.url, processes[0].url, processes[1].url), ADMIN_TOKEN, name,
        f"{name.replace('_', '-')}.example",
    )  # fmt: skip
    client = tenant.client("ingest")
    client.timeout = httpx.Timeout(120)
    body = {"name": "scale", "type": "trigger", "subject": "For {{name}}", "text": "Dear {{name}}"}
    template_id = envelope(await client.post("/v1/templates", json=body))["Result"]["id"]
    try:
        peaks: dict[str, dict[str, float]] = {}
        for file in ("baseline.csv", "big.csv", "big.xlsx"):
            with RssPeaks(processes) as sampled:
                task = await run_task(client, tenant, template_id, files[file], sink)
            peaks[file] = sampled.mb
            rows = BASELINE_ROWS if file == "baseline.csv" else ROWS
            assert (task["total"], task["invalid"], task["queued"]) == (rows, 0, rows), task
            print(f"{file}: peak RSS MB {sampled.mb}")
    finally:
        await tenant.close()
    for big in ("big.csv", "big.xlsx"):
        grew = peaks[big]["ingest"] - peaks["baseline.csv"]["ingest"]
        assert grew < FLAT_MB, f"ingest grew {grew:.0f} MB from 10,000 to 100,000 rows: {peaks}"
