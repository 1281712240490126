"""An account consumes its queue directly over AMQP with broker credentials of its own:
it receives the events; the credentials open no other account's queue; revoked, they
stop working at once, open connections included."""

from __future__ import annotations

import asyncio
from typing import Any
from urllib.parse import parse_qs

import aio_pika
import aiormq
import pytest

from postwire_testkit.api import Tenant, envelope
from postwire_testkit.wait import eventually


async def ok(answer: Any, status: int = 200) -> Any:
    assert answer.status_code == status, answer.text
    return envelope(answer)["Result"]


async def queue_with_rule(tenant: Tenant, name: str) -> None:
    api = tenant.client("notifier")
    await ok(await api.post("/v1/queues", json={"name": name}), 201)
    rule = {
        "name": name,
        "event_types": ["Deliver:SendSuccessfully"],
        "endpoints": [f"queue:{name}"],
    }
    await ok(await api.post("/v1/event-rules", json=rule), 201)


async def credentials(tenant: Tenant, queue: str) -> dict[str, str]:
    made = await ok(await tenant.client("notifier").post(f"/v1/queues/{queue}/credentials"), 201)
    return dict(made)


async def test_an_amqp_consumer_with_the_accounts_credentials_receives_the_events(
    tenant: Tenant,
) -> None:
    await queue_with_rule(tenant, "over-amqp")
    creds = await credentials(tenant, "over-amqp")
    assert set(creds) == {"username", "password", "vhost", "queue", "amqp_url"}
    rcpt = f"amqp.{tenant.name}@example.org"
    sent = envelope(await tenant.send([rcpt]))["Result"]["messages"][0]

    async with await aio_pika.connect(creds["amqp_url"]) as connection:
        channel = await connection.channel()
        queue = await channel.get_queue(creds["queue"], ensure=False)
        async with queue.iterator(timeout=30) as messages:
            async for message in messages:
                async with message.process():
                    fields = parse_qs(message.body.decode(), keep_blank_values=True)
                break
    assert fields["msg_id"] == [sent["msg_id"]]
    assert fields["rcpt"] == [rcpt]
    assert fields["event"] == ["deliver"]
    shown = await ok(await tenant.client("notifier").get("/v1/queues/over-amqp"))
    assert (shown["depth"], shown["in_flight"]) == (0, 0)


async def test_the_credentials_open_no_other_accounts_queue_nor_publish(
    tenant: Tenant, other_tenant: Tenant
) -> None:
    await queue_with_rule(tenant, "mine")
    await queue_with_rule(other_tenant, "theirs")
    mine = await credentials(tenant, "mine")
    theirs = (await credentials(other_tenant, "theirs"))["queue"]

    async with await aio_pika.connect(mine["amqp_url"]) as connection:
        channel = await connection.channel()
        queue = await channel.get_queue(theirs, ensure=False)
        with pytest.raises(aiormq.exceptions.ChannelAccessRefused):
            await queue.get(fail=False)
        channel = await connection.channel()
        with pytest.raises(aiormq.exceptions.ChannelAccessRefused):
            await channel.declare_queue(f"{mine['queue']}.extra")
    # Nor through the API: another account's queue does not exist for this one.
    answer = await tenant.client("notifier").post("/v1/queues/theirs/credentials")
    assert answer.status_code == 404


async def test_revoked_credentials_stop_working_at_once(tenant: Tenant) -> None:
    await queue_with_rule(tenant, "revoked")
    creds = await credentials(tenant, "revoked")
    api = tenant.client("notifier")
    listed = await ok(await api.get("/v1/queues/revoked/credentials"))
    assert [c["username"] for c in listed] == [creds["username"]]

    connection = await aio_pika.connect(creds["amqp_url"])
    channel = await connection.channel()
    queue = await channel.get_queue(creds["queue"], ensure=False)
    assert await queue.get(fail=False) is None  # reads while the user exists
    await ok(await api.delete(f"/v1/queues/revoked/credentials/{creds['username']}"))

    await eventually(
        lambda: not connection.connected.is_set(), what="the open connection closed", within=10
    )
    with pytest.raises((aiormq.exceptions.ProbableAuthenticationError, ConnectionError)):
        await asyncio.wait_for(aio_pika.connect(creds["amqp_url"]), 10)
    await connection.close()
    gone = await api.delete(f"/v1/queues/revoked/credentials/{creds['username']}")
    assert gone.status_code == 404
