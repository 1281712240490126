"""Batch sending tasks from a recipients file, end to end, next to Postfix in one run.

    .venv/bin/python bench/tasks.py                      # 10,000 and 100,000 rows, CSV and XLSX
    .venv/bin/python bench/tasks.py --rows 10000 --no-postfix

For each file (CSV, then XLSX; the smaller row count first) it uploads a task to
``POST /v1/tasks`` on postwire running as four processes, and measures:

- upload: the request, answered once the whole file is committed (state ``preparing``)
- expand: upload start -> the task leaves ``preparing`` (every row read, checked, stored)
- queue: upload start -> ``completed`` (every recipient accepted and queued)
- delivered msgs/s: recipients delivered to the loopback MX per second, from upload start
  to the last arrival
- peak RSS of every process while that task ran (VmRSS sampled every 0.2 s), and the sum

Each row has its own values for the template's two parameters, so each recipient gets
their own rendered, DKIM-signed 2 KB message. Then ``../shared/bench/postfix_relay.sh``
relays the same count of 2 KB messages (one trial) and the ratio is printed.
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import json
import tempfile
import time
from pathlib import Path

import httpx
from compare import postfix
from e2e import ADMIN_TOKEN, LINE, env_for, migrate
from openpyxl import Workbook

from postwire_testkit.api import Tenant, Urls
from postwire_testkit.dns import LoopbackDns
from postwire_testkit.infra import temp_database, temp_vhost, unique_name
from postwire_testkit.platform import PlatformProcess, RssPeaks
from postwire_testkit.sink import SinkProcess

SERVICES = ("events", "notifier", "delivery", "ingest")
HTML = "<p>Dear {{name}}, your code is {{code}}.</p>\n" + "<p>" + LINE * 30 + "</p>"


def write_file(path: Path, rows: int) -> None:
    header = ["address", "name", "code"]
    data = ([f"r{n}@bench.example", f"Customer {n}", f"C{n:07d}"] for n in range(rows))
    if path.suffix == ".csv":
        with path.open("w", newline="") as out:
            writer = csv.writer(out)
            writer.writerow(header)
            writer.writerows(data)
        return
    book = Workbook(write_only=True)
    sheet = book.create_sheet("recipients")
    sheet.append(header)
    for row in data:
        sheet.append(row)
    book.save(path)


def arrivals(sink: SinkProcess) -> list[float]:
    return [float(line.split("\t", 1)[0]) for line in sink.log.read_text().splitlines()]


async def run_task(
    client: httpx.AsyncClient, tenant: Tenant, template_id: str, path: Path, sink: SinkProcess,
    within: float,
) -> dict[str, float]:  # fmt: skip
    before = len(arrivals(sink))
    form = {"name": path.name, "template_id": template_id, "from": tenant.sender}
    started = time.time()
    with path.open("rb") as data:
        answer = await client.post("/v1/tasks", data=form, files={"file": (path.name, data)})
    uploaded = time.time()
    if answer.status_code != 201:
        raise RuntimeError(f"upload failed: {answer.status_code} {answer.text}")
    task_id = answer.json()["Result"]["id"]
    expanded = queued = 0.0
    deadline = time.monotonic() + within
    while not queued:
        task = (await client.get(f"/v1/tasks/{task_id}")).json()["Result"]
        if task["state"] == "failed":
            raise RuntimeError(f"task failed: {task['error']}")
        if not expanded and task["state"] != "preparing":
            expanded = time.time()
        if task["state"] == "completed":
            queued = time.time()
        if time.monotonic() > deadline:
            raise RuntimeError(f"task not done in {within} s: {task}")
        await asyncio.sleep(0.2)
    expected = task["queued"]
    while len(found := arrivals(sink)) - before < expected:
        if time.monotonic() > deadline:
            raise RuntimeError(f"{len(found) - before} of {expected} delivered in {within} s")
        await asyncio.sleep(0.5)
    last = max(found[before:])
    return {
        "rows": float(task["total"]),
        "upload_s": uploaded - started,
        "expand_s": expanded - started,
        "queue_s": queued - started,
        "delivered_per_s": expected / (last - started),
    }


async def platform_runs(args: argparse.Namespace, files: list[Path]) -> list[dict[str, object]]:
    workdir = Path(tempfile.mkdtemp(prefix="postwire-bench-tasks-"))
    dns = LoopbackDns().start()
    dns.mail_domain("bench.example")
    sink = SinkProcess(workdir)
    processes: list[PlatformProcess] = []
    results: list[dict[str, object]] = []
    try:
        async with temp_database() as database_url:
            with temp_vhost() as broker_url:
                env = env_for(database_url, broker_url, dns, sink)
                await asyncio.to_thread(migrate, env)
                print("starting postwire as four processes …", flush=True)
                processes = [PlatformProcess([name], env, workdir).start() for name in SERVICES]
                urls = Urls(processes[3].url, processes[0].url, processes[1].url)
                tenant = await Tenant.create(
                    urls, ADMIN_TOKEN, unique_name("bench"), "shop.example"
                )
                client = tenant.client("ingest")
                client.timeout = httpx.Timeout(120)
                body = {"name": "bench", "type": "trigger", "subject": "Order {{code}}",
                        "html": HTML}  # fmt: skip
                made = await client.post("/v1/templates", json=body)
                template_id = made.json()["Result"]["id"]
                for path in files:
                    print(f"task from {path.name} …", flush=True)
                    with RssPeaks(processes, every=0.2) as rss:
                        figures = await run_task(
                            client, tenant, template_id, path, sink, args.timeout
                        )
                    results.append({"file": path.name, **figures, "rss": rss.mb,
                                    "rss_sum": rss.total})  # fmt: skip
                    print(line(results[-1]), flush=True)
                await tenant.close()
    finally:
        for process in processes:
            process.stop()
        sink.stop()
        dns.stop()
    return results


def line(r: dict[str, object]) -> str:
    rss = r["rss"]
    assert isinstance(rss, dict)
    each = "  ".join(f"{name} {mb:.0f}" for name, mb in rss.items())
    return (
        f"  {r['file']:<18} upload {r['upload_s']:6.2f} s  expand {r['expand_s']:6.2f} s  "
        f"queued {r['queue_s']:7.2f} s  delivered {r['delivered_per_s']:6.0f} msgs/s  "
        f"peak RSS MB: {each}  (sum {r['rss_sum']:.0f})"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, nargs="+", default=[10_000, 100_000],
                        help="row counts, smallest first (default 10000 100000)")  # fmt: skip
    parser.add_argument("--formats", nargs="+", default=["csv", "xlsx"], choices=["csv", "xlsx"])
    parser.add_argument("--no-postfix", action="store_true", help="skip the Postfix reference")
    parser.add_argument("--timeout", type=float, default=1200, help="seconds per task")
    parser.add_argument("--json", help="write the figures to this file")
    args = parser.parse_args()

    filedir = Path(tempfile.mkdtemp(prefix="postwire-task-files-"))
    files = []
    for rows in sorted(args.rows):
        for fmt in args.formats:
            path = filedir / f"rows-{rows}.{fmt}"
            write_file(path, rows)
            files.append(path)
            print(f"wrote {path.name}: {path.stat().st_size / 2**20:.1f} MB", flush=True)
    results = asyncio.run(platform_runs(args, files))

    reference = None
    if not args.no_postfix:
        reference, _ = postfix(max(args.rows), 2048, 1)
    print("\n== batch tasks (postwire as four processes, DKIM-signed, per-row values)")
    for r in results:
        print(line(r))
        if reference:
            rate = r["delivered_per_s"]
            assert isinstance(rate, float)
            print(f"    delivered / Postfix relay ({reference:.0f} msgs/s): {rate / reference:.2f}")
    if args.json:
        Path(args.json).write_text(json.dumps({"postfix": reference, "tasks": results}))


if __name__ == "__main__":
    main()
