"""A 10 MB message to 100 recipients: stored once, with ingest's memory bounded.

Ingest runs as its own process so its peak memory (VmHWM) belongs to this request alone;
the recipients are at a null-MX domain, so delivery ends them without reading the content
and the test does not push a gigabyte through the sink.
"""

from __future__ import annotations

import base64
import os
from collections.abc import Iterator
from pathlib import Path

import asyncpg
import httpx
import pytest

from postwire_testkit.api import Tenant, Urls, envelope
from postwire_testkit.infra import unique_name
from postwire_testkit.platform import PlatformProcess

from .conftest import ADMIN_TOKEN

MB = 1024 * 1024


def rss_kb(pid: int, field: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(f"{field}:"):
            return int(line.split()[1])
    raise AssertionError(f"no {field} for {pid}")


@pytest.fixture(scope="module")
def lone_ingest(
    env: dict[str, str], log_dir: Path, platform: PlatformProcess
) -> Iterator[PlatformProcess]:
    process = PlatformProcess(["ingest"], env, log_dir).start()
    yield process
    process.stop()


async def test_ten_megabytes_to_a_hundred_recipients_is_stored_once_in_bounded_memory(
    lone_ingest: PlatformProcess, platform: PlatformProcess, db: asyncpg.Connection
) -> None:
    name = unique_name("big")
    urls = Urls(ingest=lone_ingest.url, events=platform.url, notifier=platform.url)
    tenant = await Tenant.create(urls, ADMIN_TOKEN, name, f"{name.replace('_', '-')}.example")
    try:
        await tenant.send(["warm@nomail.example"])  # imports and caches settle first
        assert lone_ingest.pid is not None
        idle = rss_kb(lone_ingest.pid, "VmRSS")

        data = os.urandom(7 * MB + 256 * 1024)  # base64: the message is just under 10 MB
        rcpts = [f"r{i}@nomail.example" for i in range(100)]
        answer = await tenant.client("ingest").post(
            "/v1/messages",
            json={
                "from": tenant.sender,
                "to": rcpts,
                "subject": "Big",
                "text": "see attached",
                "attachments": [
                    {"filename": "big.bin", "content": base64.b64encode(data).decode()}
                ],
            },
            timeout=120,
        )
        assert answer.status_code == 202, answer.text[:500]
        messages = envelope(answer)["Result"]["messages"]
        assert len(messages) == 100

        peak = rss_kb(lone_ingest.pid, "VmHWM")
        assert (peak - idle) / 1024 < 100, f"ingest grew {(peak - idle) / 1024:.0f} MB"

        request_id = await db.fetchval(
            "SELECT request_id FROM ingest.messages WHERE env_id = $1", messages[0]["env_id"]
        )
        stored = await db.fetch(
            "SELECT octet_length(head) + octet_length(body) AS size FROM ingest.contents "
            "WHERE id = $1",
            request_id,
        )
        assert len(stored) == 1  # once for the 100 recipients
        assert 9.5 * MB < stored[0]["size"] <= 10 * MB
        for m in messages[:3]:
            # An undeliverable domain: an invalid event, decided before any SMTP.
            assert await tenant.wait_for_status(m["env_id"], "invalid", "failed", within=30)
    finally:
        await tenant.close()


async def test_a_message_over_ten_megabytes_is_refused(
    lone_ingest: PlatformProcess, platform: PlatformProcess
) -> None:
    name = unique_name("huge")
    urls = Urls(ingest=lone_ingest.url, events=platform.url, notifier=platform.url)
    tenant = await Tenant.create(urls, ADMIN_TOKEN, name, f"{name.replace('_', '-')}.example")
    try:
        data = base64.b64encode(os.urandom(10 * MB)).decode()
        answer = await tenant.send(
            ["x@nomail.example"], attachments=[{"filename": "huge.bin", "content": data}]
        )
        assert answer.status_code == 400
        assert envelope(answer)["Code"] == "size_exceeded"
    finally:
        await tenant.close()
    async with httpx.AsyncClient(base_url=lone_ingest.url) as client:
        assert (await client.get("/readyz")).status_code == 200
