"""Webhook endpoints: accepted only if they answer, pushed at least once, retried on the
schedule (1s,2s in these tests), every attempt recorded."""

from __future__ import annotations

import hashlib
import hmac

import asyncpg
import pytest

from postwire_testkit.api import Tenant, envelope
from postwire_testkit.http import HttpReceiver
from postwire_testkit.wait import eventually


def signature_ok(app_key: str, push: dict) -> bool:
    expected = hmac.new(
        app_key.encode(), f"{push['timestamp']}{push['token']}".encode(), hashlib.sha256
    ).hexdigest()
    return hmac.compare_digest(expected, push["signature"])


def pushes(receiver: HttpReceiver, path: str) -> list[dict]:
    return [p.json() for p in receiver.posts(path) if p.json().get("event") != "verify"]


@pytest.mark.parametrize("failing", ["GET", "POST"])
async def test_url_must_answer_200_to_get_and_post(
    tenant: Tenant, receiver: HttpReceiver, failing: str
) -> None:
    path = f"/refuse-{failing.lower()}-{tenant.name}"
    if failing == "GET":
        receiver.get_status = 404
    else:
        receiver.fail_next(1, 503)
    try:
        answer = await tenant.client("notifier").post(
            "/v1/webhooks", json={"url": receiver.url(path), "events": ["delivered"]}
        )
    finally:
        receiver.get_status = 200
    assert answer.status_code == 400
    reply = envelope(answer)
    assert reply["Code"] == "invalid_value"
    assert failing in reply["Description"]
    listed = envelope(await tenant.client("notifier").get("/v1/webhooks"))["Result"]
    assert listed == []


async def test_verification_post_is_signed_with_the_new_app_key(
    tenant: Tenant, receiver: HttpReceiver
) -> None:
    path = f"/verify-{tenant.name}"
    hook = await tenant.add_webhook(receiver.url(path), ["delivered"])
    verification = [p.json() for p in receiver.posts(path)]
    assert [v["event"] for v in verification] == ["verify"]
    assert signature_ok(hook["app_key"], verification[0])
    listed = envelope(await tenant.client("notifier").get("/v1/webhooks"))["Result"]
    assert [(h["id"], h["url"]) for h in listed] == [(hook["id"], receiver.url(path))]
    assert "app_key" not in listed[0]  # shown once, at creation


@pytest.mark.parametrize(
    "url",
    ["ftp://example.org/hook", "javascript:alert(1)", "http://", "not a url"],
)
async def test_url_that_is_not_http_is_refused(tenant: Tenant, url: str) -> None:
    answer = await tenant.client("notifier").post(
        "/v1/webhooks", json={"url": url, "events": ["delivered"]}
    )
    assert envelope(answer)["Code"] == "invalid_value"


@pytest.mark.parametrize(
    ("url", "problem"),
    [
        ("https://a..b.example/x", "empty label"),
        ("https://" + "a" * 64 + ".example/x", "longer than 63 characters"),
        ("https://" + ("b" * 63 + ".") * 4 + "com/x", "longer than 253 characters"),
        ("https://\u2488.example/x", "IDNA"),
    ],
)
async def test_host_name_dns_cannot_carry_is_refused(
    tenant: Tenant, url: str, problem: str
) -> None:
    answer = await tenant.client("notifier").post(
        "/v1/webhooks", json={"url": url, "events": ["delivered"]}
    )
    assert answer.status_code == 400
    reply = envelope(answer)
    assert reply["Code"] == "invalid_value"
    assert "invalid host name" in reply["Description"]
    assert problem in reply["Description"]


async def test_refusal_does_not_say_where_a_name_points(
    tenant: Tenant, receiver: HttpReceiver
) -> None:
    """Private targets are allowed here (POSTWIRE_ALLOW_PRIVATE_WEBHOOKS), so a name that
    does not resolve stands in: its answer must not name an address."""
    answer = await tenant.client("notifier").post(
        "/v1/webhooks", json={"url": "http://nothing.invalid/hook", "events": ["delivered"]}
    )
    assert answer.status_code == 400
    description = envelope(answer)["Description"]
    assert "nothing.invalid does not resolve to a public address" in description


async def test_unknown_event_type_is_refused(tenant: Tenant, receiver: HttpReceiver) -> None:
    answer = await tenant.client("notifier").post(
        "/v1/webhooks", json={"url": receiver.url(), "events": ["delivered", "exploded"]}
    )
    assert envelope(answer)["Code"] == "invalid_value"
    assert "exploded" in envelope(answer)["Description"]


async def test_failed_push_is_retried_with_the_same_token(
    tenant: Tenant, receiver: HttpReceiver, db: asyncpg.Connection
) -> None:
    path = f"/flaky-{tenant.name}"
    hook = await tenant.add_webhook(receiver.url(path), ["delivered"])
    receiver.fail_next(1, 500)
    answer = await tenant.send([f"retry.{tenant.name}@example.org"])
    env_id = envelope(answer)["Result"]["messages"][0]["env_id"]

    seen = await eventually(lambda: len(pushes(receiver, path)) >= 2 and pushes(receiver, path))
    first, second = seen[:2]
    assert first["env_id"] == second["env_id"] == env_id
    assert first["token"] == second["token"]  # receivers de-duplicate retries by token
    assert signature_ok(hook["app_key"], first)
    assert signature_ok(hook["app_key"], second)
    attempts = await eventually(lambda: _attempts(db, hook["id"]), what="two attempts recorded")
    assert [(a["attempt"], a["http_status"], a["will_retry"]) for a in attempts] == [
        (1, 500, True),
        (2, 200, False),
    ]


async def _attempts(db: asyncpg.Connection, webhook_id: str) -> list[dict] | None:
    rows = await db.fetch(
        "SELECT a.attempt, a.http_status, a.will_retry FROM notifier.push_attempts a "
        "JOIN notifier.pushes p ON p.id = a.push_id WHERE p.webhook_id = $1 ORDER BY attempt",
        webhook_id,
    )
    return [dict(r) for r in rows] if len(rows) >= 2 else None


async def test_push_is_dropped_and_recorded_after_the_schedule(
    tenant: Tenant, receiver: HttpReceiver, db: asyncpg.Connection
) -> None:
    path = f"/down-{tenant.name}"
    hook = await tenant.add_webhook(receiver.url(path), ["delivered"])
    receiver.fail_next(3, 502)
    await tenant.send([f"dropped.{tenant.name}@example.org"])

    async def dropped() -> bool:
        state = await db.fetchval(
            "SELECT state FROM notifier.pushes WHERE webhook_id = $1", hook["id"]
        )
        return state == "dropped"

    await eventually(dropped, within=30, what="push dropped")
    assert len(pushes(receiver, path)) == 3  # first try + two retries (schedule 1s,2s)
    retries = await db.fetch(
        "SELECT a.will_retry FROM notifier.push_attempts a JOIN notifier.pushes p "
        "ON p.id = a.push_id WHERE p.webhook_id = $1 ORDER BY a.attempt",
        hook["id"],
    )
    assert [r["will_retry"] for r in retries] == [True, True, False]


async def test_only_subscribed_events_are_pushed(tenant: Tenant, receiver: HttpReceiver) -> None:
    path = f"/failures-only-{tenant.name}"
    await tenant.add_webhook(receiver.url(path), ["invalid"])
    answer = await tenant.send(["fine@example.org", "someone@no-such-domain.example"])
    messages = envelope(answer)["Result"]["messages"]
    for m in messages:
        await tenant.wait_for_status(m["env_id"], "delivered", "invalid")
    seen = await eventually(lambda: pushes(receiver, path), what="invalid push")
    assert [(p["event"], p["rcpt"]) for p in seen] == [
        ("invalid", "someone@no-such-domain.example")
    ]


async def test_test_push_sends_a_signed_sample_now(tenant: Tenant, receiver: HttpReceiver) -> None:
    path = f"/sample-{tenant.name}"
    hook = await tenant.add_webhook(receiver.url(path), ["click"])
    answer = await tenant.client("notifier").post(
        f"/v1/webhooks/{hook['id']}/test", json={"event": "click"}
    )
    result = envelope(answer)["Result"]
    assert result["ok"] is True
    assert result["http_status"] == 200
    (sample,) = pushes(receiver, path)
    assert sample["event"] == "click"
    assert sample["url"]
    assert signature_ok(hook["app_key"], sample)


async def test_webhooks_of_another_tenant_are_not_found(
    tenant: Tenant, other_tenant: Tenant, receiver: HttpReceiver
) -> None:
    hook = await tenant.add_webhook(receiver.url(f"/mine-{tenant.name}"), ["delivered"])
    for answer in (
        await other_tenant.client("notifier").delete(f"/v1/webhooks/{hook['id']}"),
        await other_tenant.client("notifier").post(
            f"/v1/webhooks/{hook['id']}/test", json={"event": "delivered"}
        ),
    ):
        assert answer.status_code == 404
        assert envelope(answer)["Code"] == "not_found"
    mine = envelope(await tenant.client("notifier").get("/v1/webhooks"))["Result"]
    assert [h["id"] for h in mine] == [hook["id"]]


async def test_a_webhook_added_after_traffic_receives_the_next_events(
    tenant: Tenant, receiver: HttpReceiver
) -> None:
    # The first message makes the notifier look the tenant up (and cache: no webhooks).
    first = await tenant.send([f"before.{tenant.name}@example.org"])
    await tenant.wait_for_status(envelope(first)["Result"]["messages"][0]["env_id"], "delivered")

    path = f"/late-{tenant.name}"
    await tenant.add_webhook(receiver.url(path), ["delivered"])
    second = await tenant.send([f"after.{tenant.name}@example.org"])
    env_id = envelope(second)["Result"]["messages"][0]["env_id"]
    seen = await eventually(lambda: pushes(receiver, path), what="push to the new webhook")
    assert [p["env_id"] for p in seen] == [env_id]

    # And a deleted webhook stops receiving at once.
    (hook,) = envelope(await tenant.client("notifier").get("/v1/webhooks"))["Result"]
    assert (await tenant.client("notifier").delete(f"/v1/webhooks/{hook['id']}")).status_code == 200
    third = await tenant.send([f"gone.{tenant.name}@example.org"])
    await tenant.wait_for_status(envelope(third)["Result"]["messages"][0]["env_id"], "delivered")
    fourth = await tenant.send([f"gone2.{tenant.name}@example.org"])
    await tenant.wait_for_status(envelope(fourth)["Result"]["messages"][0]["env_id"], "delivered")
    assert [p["env_id"] for p in pushes(receiver, path)] == [env_id]
