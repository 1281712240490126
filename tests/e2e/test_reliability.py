"""Nothing accepted is lost: not when the broker is unreachable at accept time, not when
the delivery process is killed, and a message copied twice on the bus is sent once.

These tests run the services as separate processes (the deployed shape) on their own
database and vhost, with ingest reaching RabbitMQ through a proxy the test can cut.
"""

from __future__ import annotations

import re
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import aio_pika
import asyncpg
import httpx
import pytest
from pydantic import BaseModel

from postwire_common.schemas import OutboundBatches, Recipient, RecipientBatch
from postwire_testkit.api import Tenant, Urls, envelope
from postwire_testkit.dns import LoopbackDns
from postwire_testkit.infra import temp_database, temp_vhost, unique_name
from postwire_testkit.platform import PlatformProcess
from postwire_testkit.proxy import TcpProxy
from postwire_testkit.smtp import SmtpSink
from postwire_testkit.wait import eventually

from .conftest import ADMIN_TOKEN, migrate, platform_env


@dataclass
class Split:
    ingest: PlatformProcess
    events: PlatformProcess
    delivery: PlatformProcess
    proxy: TcpProxy
    env: dict[str, str]
    database_url: str
    log_dir: Path

    @property
    def urls(self) -> Urls:
        return Urls(ingest=self.ingest.url, events=self.events.url, notifier=self.events.url)


def through(proxy: TcpProxy, broker_url: str) -> str:
    parts = urlsplit(broker_url)
    netloc = f"{parts.username}:{parts.password}@127.0.0.1:{proxy.port}"
    return urlunsplit(parts._replace(netloc=netloc))


@pytest.fixture(scope="module")
def split_vhost() -> Iterator[str]:
    with temp_vhost() as url:
        yield url


@pytest.fixture(scope="module")
async def split(
    split_vhost: str, dns: LoopbackDns, mx: SmtpSink, log_dir: Path
) -> AsyncIterator[Split]:
    async with temp_database() as database_url:
        env = {
            **platform_env(database_url, split_vhost, dns, mx),
            "POSTWIRE_DELIVERY_ATTEMPT_TIMEOUT": "4s",
        }
        migrate(env)
        proxy = TcpProxy("127.0.0.1", urlsplit(split_vhost).port or 5672).start()
        events = PlatformProcess(["events", "notifier"], env, log_dir).start()
        delivery = PlatformProcess(["delivery"], env, log_dir).start()
        ingest_env = {**env, "POSTWIRE_BROKER_URL": through(proxy, split_vhost)}
        ingest = PlatformProcess(["ingest"], ingest_env, log_dir).start()
        setup = Split(ingest, events, delivery, proxy, env, database_url, log_dir)
        try:
            yield setup
        finally:
            for process in (setup.ingest, setup.delivery, setup.events):
                process.stop()
            proxy.stop()


@pytest.fixture
async def split_tenant(split: Split) -> AsyncIterator[Tenant]:
    name = unique_name("split")
    tenant = await Tenant.create(split.urls, ADMIN_TOKEN, name, f"{name.replace('_', '-')}.example")
    yield tenant
    await tenant.close()


async def publish_raw(
    broker_url: str,
    exchange: str,
    routing_key: str,
    body: BaseModel | bytes,
    headers: dict[str, int] | None = None,
) -> None:
    """Put a message on the bus the way another process (or RabbitMQ) would."""
    connection = await aio_pika.connect(broker_url)
    try:
        channel = await connection.channel(publisher_confirms=True)
        target = await channel.get_exchange(exchange)
        data = body if isinstance(body, bytes) else body.model_dump_json().encode()
        message = aio_pika.Message(data, content_type="application/json", headers=headers)
        await target.publish(message, routing_key=routing_key, mandatory=True)
    finally:
        await connection.close()


async def ready(url: str) -> int:
    async with httpx.AsyncClient() as client:
        return (await client.get(f"{url}/readyz")).status_code


async def test_accepted_while_broker_unreachable_is_delivered_later(
    split: Split, split_tenant: Tenant, mx: SmtpSink
) -> None:
    rcpt = f"outage.{split_tenant.name}@example.org"
    split.proxy.cut()
    try:
        await eventually(lambda: _equals(ready(split.ingest.url), 503), what="ingest not ready")
        answer = await split_tenant.send([rcpt])
        assert answer.status_code == 202, answer.text
        env_id = envelope(answer)["Result"]["messages"][0]["env_id"]
        conn = await asyncpg.connect(split.database_url)
        try:
            waiting = await conn.fetchval(
                "SELECT count(*) FROM ingest.outbox "
                "WHERE strpos(convert_from(body, 'UTF8'), $1) > 0",
                env_id,
            )
            assert waiting == 2  # its recipient batch and request event, not yet published
        finally:
            await conn.close()
        assert mx.for_rcpt(rcpt) == []
    finally:
        split.proxy.restore()

    await split_tenant.wait_for_status(env_id, "delivered", within=60)
    assert len(mx.for_rcpt(rcpt)) == 1
    assert await ready(split.ingest.url) == 200


async def _equals(awaitable: object, expected: int) -> bool:
    return bool(await awaitable == expected)  # type: ignore[misc]


async def test_killed_delivery_process_loses_nothing(
    split: Split, split_tenant: Tenant, mx: SmtpSink
) -> None:
    batch = [f"kill{i}.{split_tenant.name}@example.org" for i in range(40)]
    mx.delay = 0.15  # slow enough that mail is in flight when the process dies
    try:
        env_ids: dict[str, str] = {}
        for chunk in (batch[:20], batch[20:]):
            answer = await split_tenant.send(chunk)
            env_ids.update({m["env_id"]: m["rcpt"] for m in envelope(answer)["Result"]["messages"]})

        def arrived() -> int:
            return sum(1 for rcpt in batch if mx.for_rcpt(rcpt))

        await eventually(lambda: arrived() >= 5, what="some mail delivered")
        split.delivery.kill()  # SIGKILL: no graceful shutdown
        killed = time.monotonic()
        assert arrived() < len(batch), "all mail arrived before the kill; slow the sink down"
        split.delivery = PlatformProcess(["delivery"], split.env, split.log_dir).start()

        for env_id in env_ids:
            assert await split_tenant.wait_for_status(env_id, "delivered", within=30)
        # What the dead process held came free within its lease (3 s here), renewed while
        # it lived: no waiting out a long lease.
        assert time.monotonic() - killed < 20
    finally:
        mx.delay = 0.0

    copies = [len(mx.for_rcpt(rcpt)) for rcpt in batch]
    assert min(copies) == 1  # every message arrived
    # Only mail whose DATA was answered just before the kill, before its result was
    # stored, may arrive twice: at most one per open SMTP connection.
    assert sum(copies) - len(batch) <= 8
    conn = await asyncpg.connect(split.database_url)
    try:
        terminal = await conn.fetchval(
            "SELECT count(*) FROM delivery.results WHERE env_id = ANY($1::text[])",
            list(env_ids),
        )
        logged = await conn.fetchval(
            "SELECT count(*) FROM events.event_log WHERE env_id = ANY($1::text[]) "
            "AND event = 'delivered'",
            list(env_ids),
        )
    finally:
        await conn.close()
    assert terminal == logged == len(batch)  # exactly one terminal state each


async def duplicates_skipped(url: str) -> float:
    async with httpx.AsyncClient() as client:
        text = (await client.get(f"{url}/metrics")).text
    match = re.search(r"^postwire_delivery_duplicates_total ([0-9.e+]+)$", text, re.MULTILINE)
    return float(match.group(1)) if match else 0.0


async def test_a_second_bus_copy_is_not_delivered_again(
    split: Split, split_vhost: str, split_tenant: Tenant, mx: SmtpSink
) -> None:
    rcpt = f"copied.{split_tenant.name}@example.org"
    answer = await split_tenant.send([rcpt])
    sent = envelope(answer)["Result"]["messages"][0]
    await split_tenant.wait_for_status(sent["env_id"], "delivered")
    before = await duplicates_skipped(split.delivery.url)

    copy = RecipientBatch(
        request_id="copied",
        content_id="copied",
        tenant_id="copied",
        sender=split_tenant.sender,
        domain="example.org",
        recv_time=datetime.now(UTC),
        recipients=[Recipient(env_id=sent["env_id"], msg_id=sent["msg_id"], rcpt=rcpt)],
    )
    await publish_raw(split_vhost, "postwire.outbound", "outbound", OutboundBatches(batches=[copy]))

    await eventually(
        lambda: _greater(duplicates_skipped(split.delivery.url), before),
        what="the copy consumed",
    )
    assert len(mx.for_rcpt(rcpt)) == 1


async def _greater(awaitable: object, than: float) -> bool:
    return bool(await awaitable > than)  # type: ignore[operator]


def stuck_batch(tenant: Tenant, rcpt: str) -> tuple[str, OutboundBatches]:
    env_id = unique_name("DEAD").upper()
    batch = RecipientBatch(
        request_id="gone",
        content_id="gone",
        tenant_id="t-dead",
        sender=tenant.sender,
        domain="example.org",
        recv_time=datetime.now(UTC),
        recipients=[Recipient(env_id=env_id, msg_id="<dead@shop.example>", rcpt=rcpt)],
    )
    return env_id, OutboundBatches(batches=[batch])


async def failed_event(database_url: str, env_id: str) -> asyncpg.Record:
    conn = await asyncpg.connect(database_url)
    try:

        async def find() -> asyncpg.Record | None:
            return await conn.fetchrow(
                "SELECT status, err_msg FROM events.event_log WHERE env_id = $1 "
                "AND event = 'failed'",
                env_id,
            )

        found: asyncpg.Record = await eventually(find, what="the failed event")
        return found
    finally:
        await conn.close()


async def test_a_dead_lettered_message_is_redriven_and_reaches_a_terminal_state(
    split: Split, split_vhost: str, split_tenant: Tenant, mx: SmtpSink
) -> None:
    # RabbitMQ dead-letters a message whose handling failed x-delivery-limit times to
    # postwire.dead with the queue's name as routing key; do what it does. The redriver
    # sends it back to work, where it ends (here: its content was never stored).
    rcpt = f"dead.{split_tenant.name}@example.org"
    env_id, stuck = stuck_batch(split_tenant, rcpt)
    await publish_raw(split_vhost, "postwire.dead", "delivery.intake", stuck)
    recorded = await failed_event(split.database_url, env_id)
    assert recorded["status"] == 4
    assert "content is gone" in recorded["err_msg"]
    assert mx.for_rcpt(rcpt) == []
    redriven = 'postwire_dead_letters_redriven_total{queue="delivery.intake"}'
    assert await metric(split.delivery.url, redriven) >= 1


async def test_a_message_redriven_too_often_still_ends_failed(
    split: Split, split_vhost: str, split_tenant: Tenant, mx: SmtpSink
) -> None:
    rcpt = f"again.{split_tenant.name}@example.org"
    env_id, stuck = stuck_batch(split_tenant, rcpt)
    await publish_raw(
        split_vhost, "postwire.dead", "delivery.intake", stuck, {"x-postwire-redriven": 5}
    )
    recorded = await failed_event(split.database_url, env_id)
    assert recorded["status"] == 4
    assert "failed repeatedly" in recorded["err_msg"]
    assert mx.for_rcpt(rcpt) == []


async def test_an_unreadable_dead_letter_is_parked_for_an_operator(
    split: Split, split_vhost: str
) -> None:
    await publish_raw(
        split_vhost, "postwire.dead", "delivery.intake", b"{not json", {"x-postwire-redriven": 5}
    )

    async def parked() -> int:
        connection = await aio_pika.connect(split_vhost)
        async with connection:
            channel = await connection.channel()
            queue = await channel.declare_queue("delivery.intake.parked", passive=True)
            return queue.declaration_result.message_count or 0

    assert await eventually(parked, what="the message parked") == 1
    assert (
        await metric(split.delivery.url, 'postwire_dead_letters{queue="delivery.intake.parked"}')
        >= 0
    )


async def metric(url: str, name: str) -> float:
    """A sample of ``url``'s /metrics, by its full name with labels; 0 when absent."""
    async with httpx.AsyncClient() as client:
        text = (await client.get(f"{url}/metrics")).text
    found = re.search(rf"^{re.escape(name)} ([0-9.e+-]+)$", text, re.MULTILINE)
    return float(found.group(1)) if found else 0.0
