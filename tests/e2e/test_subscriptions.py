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
