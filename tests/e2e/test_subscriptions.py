"""HTTP subscriptions of event rules and topics, pushed by the webhook engine: the body in
the subscription's format with the webhook signature in headers, MNS's retry strategies
(shortened by POSTWIRE_SUBSCRIPTION_RETRY_SCALE in this suite), fan-out to two HTTP
endpoints and a queue, and a hanging endpoint that delays no other."""

from __future__ import annotations

import asyncio
import itertools
import time
from collections.abc import Iterator
from typing import Any
from urllib.parse import parse_qs

import asyncpg
import httpx
import pytest

from postwire_notifier.signature import verify
from postwire_testkit.api import Tenant, envelope
from postwire_testkit.http import HttpReceiver, Request
from postwire_testkit.wait import eventually


@pytest.fixture
def endpoint() -> Iterator[HttpReceiver]:
    """A receiver of this test alone: its failures are not consumed by other tests."""
    receiver = HttpReceiver().start()
    yield receiver
    receiver.stop()


def api(tenant: Tenant) -> httpx.AsyncClient:
    return tenant.client("notifier")


async def make_rule(tenant: Tenant, name: str, endpoints: list[str], **extra: Any) -> Any:
    body = {"name": name, "event_types": ["Deliver:SendSuccessfully"], "endpoints": endpoints}
    answer = await api(tenant).post("/v1/event-rules", json=body | extra)
    assert answer.status_code == 201, answer.text
    return envelope(answer)["Result"]


def signed_by(request: Request, app_key: str) -> bool:
    headers = {k.lower(): v for k, v in request.headers.items()}
    return verify(
        app_key,
        int(headers["x-postwire-timestamp"]),
        headers["x-postwire-token"],
        headers["x-postwire-signature"],
    )


async def test_a_rule_fans_out_to_two_http_endpoints_and_a_queue(
    tenant: Tenant, endpoint: HttpReceiver
) -> None:
    answer = await api(tenant).post("/v1/queues", json={"name": "fan"})
    assert answer.status_code == 201
    urls = [endpoint.url("/one"), endpoint.url("/two")]
    rule = await make_rule(tenant, "fan", [*urls, "queue:fan"])
    assert set(rule["app_keys"]) == {"http-1", "http-2"}
    rcpt = f"fan.http.{tenant.name}@example.org"
    sent = envelope(await tenant.send([rcpt]))["Result"]["messages"][0]

    for path, sub in (("/one", "http-1"), ("/two", "http-2")):
        [push] = await eventually(lambda p=path: endpoint.posts(p), what=f"push to {path}")
        assert push.headers["Content-Type"].startswith("text/plain")
        fields = parse_qs(push.body.decode(), keep_blank_values=True, strict_parsing=True)
        assert (fields["env_id"], fields["rcpt"], fields["status"]) == (
            [sent["env_id"]],
            [rcpt],
            ["0"],
        )
        assert signed_by(push, rule["app_keys"][sub])
        assert not signed_by(push, rule["app_keys"]["http-2" if sub == "http-1" else "http-1"])
    received = await api(tenant).post("/v1/queues/fan/receive", json={"wait_seconds": 10})
    [queued] = envelope(received)["Result"]
    assert parse_qs(queued["body"])["env_id"] == [sent["env_id"]]


async def test_backoff_retry_makes_three_retries_then_drops(
    tenant: Tenant, endpoint: HttpReceiver, db: asyncpg.Connection
) -> None:
    endpoint.post_status = 500
    await make_rule(tenant, "failing", [endpoint.url("/down")], notify_strategy="BACKOFF_RETRY")
    await tenant.send([f"backoff.{tenant.name}@example.org"])

    await eventually(lambda: len(endpoint.posts("/down")) >= 4, what="four attempts")
    attempts = endpoint.posts("/down")
    gaps = [b.at - a.at for a, b in itertools.pairwise(attempts)]
    # 10-20 s each, scaled by 0.01 in this suite (plus claiming time).
    assert all(0.09 <= g < 3 for g in gaps), gaps

    async def dropped() -> bool:
        state = await db.fetchval(
            "SELECT p.state FROM notifier.pushes p JOIN notifier.webhooks w "
            "ON w.id = p.webhook_id WHERE w.url = $1",
            endpoint.url("/down"),
        )
        return state == "dropped"

    await eventually(dropped, what="the push dropped after its last retry")
    await asyncio.sleep(0.5)
    assert len(endpoint.posts("/down")) == 4


async def test_exponential_decay_retry_waits_longer_each_time(
    tenant: Tenant, endpoint: HttpReceiver
) -> None:
    endpoint.fail_next(4)
    await make_rule(
        tenant, "decay", [endpoint.url("/decay")], notify_strategy="EXPONENTIAL_DECAY_RETRY"
    )
    await tenant.send([f"decay.{tenant.name}@example.org"])

    await eventually(lambda: len(endpoint.posts("/decay")) >= 5, within=30, what="five attempts")
    attempts = endpoint.posts("/decay")
    gaps = [b.at - a.at for a, b in itertools.pairwise(attempts)]
    assert gaps[-1] >= 0.08  # 8 s scaled by 0.01
    await asyncio.sleep(0.5)
    assert len(endpoint.posts("/decay")) == 5  # the fifth succeeded: no more


async def test_a_hanging_endpoint_does_not_delay_another(
    tenant: Tenant, endpoint: HttpReceiver
) -> None:
    endpoint.hang("/stuck", 30)
    await make_rule(tenant, "mixed", [endpoint.url("/stuck"), endpoint.url("/fine")])
    started = time.monotonic()
    for n in range(10):
        await tenant.send([f"hang{n}.{tenant.name}@example.org"])
    await eventually(lambda: len(endpoint.posts("/fine")) >= 10, within=15, what="ten pushes")
    assert time.monotonic() - started < 10
    endpoint.hang("/stuck", 0)


async def test_push_history_lists_every_attempt_and_a_dropped_push_is_redelivered(
    tenant: Tenant, endpoint: HttpReceiver, other_tenant: Tenant
) -> None:
    endpoint.post_status = 500
    await make_rule(tenant, "history", [endpoint.url("/hist")], notify_strategy="BACKOFF_RETRY")
    await tenant.send([f"hist.{tenant.name}@example.org"])
    path = "/v1/topics/rule.history/subscriptions/http-1/deliveries"

    async def dropped() -> Any:
        found = envelope(await api(tenant).get(path, params={"state": "dropped"}))["Result"]
        return found["deliveries"]

    [push] = await eventually(dropped, what="a dropped push in the history")
    assert [a["attempt"] for a in push["history"]] == [1, 2, 3, 4]
    assert all(a["http_status"] == 500 for a in push["history"])
    assert [a["will_retry"] for a in push["history"]] == [True, True, True, False]
    assert push["next_try"] is None
    pending = envelope(await api(tenant).get(path, params={"state": "pending"}))["Result"]
    assert pending["deliveries"] == []
    assert (await api(other_tenant).get(path)).status_code == 404

    endpoint.post_status = 200
    first_token = endpoint.posts("/hist")[0].headers["X-Postwire-Token"]
    again = await api(tenant).post(f"{path}/{push['id']}/redeliver")
    assert again.status_code == 200, again.text
    await eventually(lambda: len(endpoint.posts("/hist")) == 5, what="the redelivery")
    last = endpoint.posts("/hist")[-1]
    assert last.headers["X-Postwire-Token"] != first_token  # a fresh token and signature

    async def delivered() -> Any:
        found = envelope(await api(tenant).get(path, params={"state": "delivered"}))["Result"]
        return found["deliveries"]

    [done] = await eventually(delivered, what="the push delivered")
    assert done["history"][-1]["http_status"] == 200
    missing = await api(tenant).post(f"{path}/999999999/redeliver")
    assert missing.status_code == 404


async def test_a_webhooks_push_history_is_the_same_engines(
    tenant: Tenant, endpoint: HttpReceiver, other_tenant: Tenant
) -> None:
    made = await api(tenant).post(
        "/v1/webhooks", json={"url": endpoint.url("/wh"), "events": ["delivered"]}
    )
    hook = envelope(made)["Result"]
    await tenant.send([f"wh.{tenant.name}@example.org"])
    path = f"/v1/webhooks/{hook['id']}/deliveries"

    async def delivered() -> Any:
        answer = await api(tenant).get(path, params={"state": "delivered"})
        return envelope(answer)["Result"]["deliveries"]

    [push] = await eventually(delivered, what="the webhook push delivered, in its history")
    assert push["history"][0]["http_status"] == 200
    assert push["event_id"].endswith(":delivered")
    assert (await api(other_tenant).get(path)).status_code == 404
    bad = await api(tenant).get(path, params={"state": "lost"})
    assert bad.status_code == 400
