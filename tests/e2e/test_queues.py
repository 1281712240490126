"""Account queues fed by event rules, received over HTTP as MNS receives: the seed's
SIMPLIFIED line, visibility timeouts, receipt handles, dequeue counts, long polling and
retention; JSON through a topic of the user's own; a rule whose topic is gone counts its
events as undeliverable."""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from typing import Any
from urllib.parse import parse_qs

import aio_pika
import asyncpg
import httpx

from postwire_notifier.queue_topology import ENQUEUED, EXCHANGE, QUEUE, TENANT, routing_key
from postwire_testkit.api import Tenant, envelope
from postwire_testkit.wait import eventually


def api(tenant: Tenant) -> httpx.AsyncClient:
    return tenant.client("notifier")


async def ok(answer: httpx.Response, status: int = 200) -> Any:
    assert answer.status_code == status, answer.text
    return envelope(answer)["Result"]


async def make_rule(tenant: Tenant, name: str, types: list[str], endpoints: list[str]) -> None:
    body = {"name": name, "event_types": types, "endpoints": endpoints}
    await ok(await api(tenant).post("/v1/event-rules", json=body), 201)


async def receive(tenant: Tenant, queue: str, wait: int = 10, most: int = 16) -> list[Any]:
    answer = await api(tenant).post(
        f"/v1/queues/{queue}/receive", json={"max": most, "wait_seconds": wait}
    )
    return list(await ok(answer))


async def test_delivered_mail_reaches_a_queue_as_the_seeds_line(tenant: Tenant) -> None:
    await ok(await api(tenant).post("/v1/queues", json={"name": "results"}), 201)
    await make_rule(tenant, "results", ["Deliver:SendSuccessfully"], ["queue:results"])
    rcpt = f"queue.{tenant.name}@example.org"
    sent = envelope(await tenant.send([rcpt]))["Result"]["messages"][0]

    [message] = await receive(tenant, "results")
    fields = parse_qs(message["body"], keep_blank_values=True, strict_parsing=True)
    assert list(fields) == [
        "env_id", "msg_id", "account", "from", "rcpt", "recv_time", "end_time", "status",
        "event", "region", "err_code", "err_msg",
    ]  # fmt: skip
    assert fields["env_id"] == [sent["env_id"]]
    assert fields["msg_id"] == [sent["msg_id"]]
    assert fields["rcpt"] == [rcpt]
    assert fields["from"] == [tenant.sender]
    assert (fields["status"], fields["event"]) == (["0"], ["deliver"])
    assert fields["err_code"][0].startswith("250")
    assert len(fields["end_time"][0]) == len("2017-04-14 11:44:48")
    assert message["dequeue_count"] == 1

    # Invisible while received; acknowledged by its handle, once.
    assert await receive(tenant, "results", wait=0) == []
    handle = message["receipt_handle"]
    await ok(await api(tenant).delete(f"/v1/queues/results/messages/{handle}"))
    stale = await api(tenant).delete(f"/v1/queues/results/messages/{handle}")
    assert (stale.status_code, envelope(stale)["Code"]) == (404, "not_found")
    shown = await ok(await api(tenant).get("/v1/queues/results"))
    assert (shown["depth"], shown["in_flight"]) == (0, 0)


async def test_an_unacknowledged_message_comes_back_with_its_dequeue_count(
    tenant: Tenant,
) -> None:
    queue = {"name": "short", "visibility_timeout": 1}
    await ok(await api(tenant).post("/v1/queues", json=queue), 201)
    await make_rule(tenant, "short", ["Deliver:Request"], ["queue:short"])
    await tenant.send([f"vis.{tenant.name}@example.org"])

    [first] = await receive(tenant, "short")
    shown = await ok(await api(tenant).get("/v1/queues/short"))
    assert (shown["depth"], shown["in_flight"]) == (0, 1)
    await asyncio.sleep(1.2)
    [again] = await receive(tenant, "short", wait=5)
    assert again["message_id"] == first["message_id"]
    assert again["dequeue_count"] == 2
    assert again["receipt_handle"] != first["receipt_handle"]
    old = await api(tenant).delete(f"/v1/queues/short/messages/{first['receipt_handle']}")
    assert old.status_code == 404
    await ok(await api(tenant).delete(f"/v1/queues/short/messages/{again['receipt_handle']}"))


async def test_a_long_poll_returns_when_a_message_arrives(tenant: Tenant) -> None:
    await ok(await api(tenant).post("/v1/queues", json={"name": "poll"}), 201)
    await make_rule(tenant, "poll", ["Deliver:Request"], ["queue:poll"])
    started = time.monotonic()
    waiting = asyncio.create_task(receive(tenant, "poll", wait=20))
    await asyncio.sleep(1.0)
    assert not waiting.done()
    await tenant.send([f"poll.{tenant.name}@example.org"])
    messages = await waiting
    assert len(messages) == 1
    assert time.monotonic() - started < 10


async def test_messages_past_retention_are_dropped_and_counted(
    tenant: Tenant, db: asyncpg.Connection, broker_url: str
) -> None:
    await ok(
        await api(tenant).post("/v1/queues", json={"name": "old", "message_retention": 60}), 201
    )
    tenant_id = await db.fetchval("SELECT id FROM ingest.accounts WHERE name = $1", tenant.name)
    # A message enqueued 61 s ago, as the notifier stamps it, straight into the queue.
    async with await aio_pika.connect(broker_url) as connection:
        channel = await connection.channel()
        exchange = await channel.get_exchange(EXCHANGE)
        headers = {TENANT: tenant_id, QUEUE: "old", ENQUEUED: int(time.time() * 1000) - 61_000}
        await exchange.publish(
            aio_pika.Message(b"old=1", message_id=uuid.uuid4().hex, headers=headers),
            routing_key=routing_key(tenant_id, "old"),
        )
    shown = await ok(await api(tenant).get("/v1/queues/old"))
    assert (shown["depth"], shown["dropped"]) == (0, 1)
    assert await receive(tenant, "old", wait=0) == []


async def test_a_topic_of_ones_own_fans_out_in_json_and_simplified(tenant: Tenant) -> None:
    for queue in ("as-json", "as-line"):
        await ok(await api(tenant).post("/v1/queues", json={"name": queue}), 201)
    await ok(await api(tenant).post("/v1/topics", json={"name": "mine"}), 201)
    for name, queue, fmt in (("j", "as-json", "JSON"), ("s", "as-line", "SIMPLIFIED")):
        sub = {"name": name, "endpoint": f"queue:{queue}", "content_format": fmt}
        await ok(await api(tenant).post("/v1/topics/mine/subscriptions", json=sub), 201)
    await make_rule(tenant, "to-mine", ["Deliver:SendSuccessfully"], ["topic:mine"])
    rcpt = f"fan.{tenant.name}@example.org"
    await tenant.send([rcpt])

    [as_json] = await receive(tenant, "as-json")
    [as_line] = await receive(tenant, "as-line")
    fields = json.loads(as_json["body"])
    line = {k: v[0] for k, v in parse_qs(as_line["body"], keep_blank_values=True).items()}
    assert fields == {k: line.get(k, "") for k in fields}
    assert fields["rcpt"] == rcpt


async def test_a_rule_whose_topic_is_gone_counts_undeliverable_events(tenant: Tenant) -> None:
    await ok(await api(tenant).post("/v1/topics", json={"name": "gone"}), 201)
    await make_rule(tenant, "lost", ["Deliver:Request"], ["topic:gone"])
    await ok(await api(tenant).delete("/v1/topics/gone"))
    await tenant.send([f"lost.{tenant.name}@example.org"])

    async def counted() -> bool:
        rule = await ok(await api(tenant).get("/v1/event-rules/lost"))
        return bool(rule["undeliverable"] >= 1)

    await eventually(counted, what="the undeliverable event counted")


async def test_another_account_cannot_receive_or_acknowledge(
    tenant: Tenant, other_tenant: Tenant
) -> None:
    await ok(await api(tenant).post("/v1/queues", json={"name": "private-q"}), 201)
    await make_rule(tenant, "private-q", ["Deliver:Request"], ["queue:private-q"])
    await tenant.send([f"priv.{tenant.name}@example.org"])
    [message] = await receive(tenant, "private-q")
    theirs = api(other_tenant)
    answer = await theirs.post("/v1/queues/private-q/receive", json={})
    assert answer.status_code == 404
    handle = message["receipt_handle"]
    answer = await theirs.delete(f"/v1/queues/private-q/messages/{handle}")
    assert answer.status_code == 404
    await ok(await api(tenant).delete(f"/v1/queues/private-q/messages/{handle}"))


async def test_a_batch_acknowledge_deletes_what_it_names_and_reports_stale_handles(
    tenant: Tenant, other_tenant: Tenant
) -> None:
    await ok(await api(tenant).post("/v1/queues", json={"name": "batch-q"}), 201)
    await make_rule(tenant, "batch-q", ["Deliver:Request"], ["queue:batch-q"])
    await tenant.send([f"b{i}.{tenant.name}@example.org" for i in range(3)])

    async def all_three() -> list[Any] | None:
        got = await receive(tenant, "batch-q", wait=1)
        return got if len(got) == 3 else None

    handles = [m["receipt_handle"] for m in await eventually(all_three, what="3 messages")]
    body = {"receipt_handles": [*handles[:2], "0" * 32]}
    # Another account's call acknowledges nothing: the queue is not theirs.
    answer = await api(other_tenant).request("DELETE", "/v1/queues/batch-q/messages", json=body)
    assert answer.status_code == 404
    result = await ok(await api(tenant).request("DELETE", "/v1/queues/batch-q/messages", json=body))
    assert result["deleted"] == handles[:2]
    assert [(f["receipt_handle"], f["code"]) for f in result["failed"]] == [("0" * 32, "not_found")]
    queue = await ok(await api(tenant).get("/v1/queues/batch-q"))
    assert (queue["depth"], queue["in_flight"]) == (0, 1)
    too_many = {"receipt_handles": ["x"] * 17}
    answer = await api(tenant).request("DELETE", "/v1/queues/batch-q/messages", json=too_many)
    assert answer.status_code == 400
    assert envelope(answer)["Code"] == "invalid_value"


async def change_visibility(tenant: Tenant, queue: str, handle: str, seconds: int) -> Any:
    answer = await api(tenant).put(
        f"/v1/queues/{queue}/messages/{handle}/visibility", json={"visibility_timeout": seconds}
    )
    return await ok(answer)


async def test_a_visibility_extended_past_the_queues_keeps_the_message_hidden(
    tenant: Tenant,
) -> None:
    queue = {"name": "extended", "visibility_timeout": 1}
    await ok(await api(tenant).post("/v1/queues", json=queue), 201)
    await make_rule(tenant, "extended", ["Deliver:Request"], ["queue:extended"])
    await tenant.send([f"ext.{tenant.name}@example.org"])
    [first] = await receive(tenant, "extended")

    changed = await change_visibility(tenant, "extended", first["receipt_handle"], 4)
    assert changed["receipt_handle"] != first["receipt_handle"]
    started = time.time()
    assert await receive(tenant, "extended", wait=2) == []  # past the queue's 1 s
    shown = await ok(await api(tenant).get("/v1/queues/extended"))
    assert (shown["depth"], shown["in_flight"]) == (0, 1)

    [again] = await receive(tenant, "extended", wait=5)
    assert time.time() - started >= 3.5
    assert (again["message_id"], again["dequeue_count"]) == (first["message_id"], 2)
    await ok(await api(tenant).delete(f"/v1/queues/extended/messages/{again['receipt_handle']}"))
    assert await receive(tenant, "extended", wait=2) == []  # exactly once


async def test_a_visibility_made_zero_shows_the_message_again_at_once(tenant: Tenant) -> None:
    await ok(await api(tenant).post("/v1/queues", json={"name": "at-once"}), 201)
    await make_rule(tenant, "at-once", ["Deliver:Request"], ["queue:at-once"])
    await tenant.send([f"zero.{tenant.name}@example.org"])
    [first] = await receive(tenant, "at-once")

    changed = await change_visibility(tenant, "at-once", first["receipt_handle"], 0)
    [again] = await receive(tenant, "at-once", wait=0)
    assert (again["message_id"], again["body"]) == (first["message_id"], first["body"])
    assert again["dequeue_count"] == 2
    assert again["receipt_handle"] not in {changed["receipt_handle"], first["receipt_handle"]}
    for stale in (first["receipt_handle"], changed["receipt_handle"]):
        answer = await api(tenant).put(
            f"/v1/queues/at-once/messages/{stale}/visibility", json={"visibility_timeout": 5}
        )
        assert (answer.status_code, envelope(answer)["Code"]) == (404, "not_found")
    too_long = await api(tenant).put(
        f"/v1/queues/at-once/messages/{again['receipt_handle']}/visibility",
        json={"visibility_timeout": 43201},
    )
    assert (too_long.status_code, envelope(too_long)["Code"]) == (400, "invalid_value")
    await ok(await api(tenant).delete(f"/v1/queues/at-once/messages/{again['receipt_handle']}"))
    shown = await ok(await api(tenant).get("/v1/queues/at-once"))
    assert (shown["depth"], shown["in_flight"]) == (0, 0)
