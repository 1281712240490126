"""What recipients' servers (and DNS) answer decides each message's terminal state."""

from __future__ import annotations

import pytest

from postwire_testkit.api import Tenant, envelope
from postwire_testkit.http import HttpReceiver
from postwire_testkit.smtp import SmtpSink
from postwire_testkit.wait import eventually


async def send_one(tenant: Tenant, rcpt: str) -> str:
    answer = await tenant.send([rcpt])
    assert answer.status_code == 202, answer.text
    return str(envelope(answer)["Result"]["messages"][0]["env_id"])


async def timeline(tenant: Tenant, env_id: str) -> dict:
    return dict(envelope(await tenant.message(env_id))["Result"])


@pytest.mark.parametrize(
    ("reply", "status"),
    [
        ("550 5.1.1 <{}>: user unknown", 2),
        ("550 No Such User", 2),
        ("554 5.7.1 Message rejected as spam", 3),
        ("552 5.3.4 Message too big for system", 4),
    ],
    ids=["user-unknown", "aliyun-no-such-user", "spam", "other"],
)
async def test_permanent_rejection_fails_with_status(
    tenant: Tenant, mx: SmtpSink, receiver: HttpReceiver, reply: str, status: int
) -> None:
    rcpt = f"rejected.{tenant.name}.{status}@example.org"
    mx.reject(rcpt, reply)
    await tenant.add_webhook(receiver.url(f"/{tenant.name}"), ["failed", "delivered"])
    env_id = await send_one(tenant, rcpt)

    assert await tenant.wait_for_status(env_id, "failed", "delivered") == "failed"
    shown = await timeline(tenant, env_id)
    assert shown["status_code"] == status
    assert shown["err_code"] == int(reply[:3])
    assert [e["event"] for e in shown["events"]] == ["request", "failed"]
    assert mx.for_rcpt(rcpt) == []

    pushes = await eventually(
        lambda: [
            p.json() for p in receiver.posts(f"/{tenant.name}") if p.json()["event"] != "verify"
        ],
        what="failed push",
    )
    assert [(p["event"], p["type"], p["status"]) for p in pushes] == [
        ("failed", "Deliver:SendFailed", status)
    ]


async def test_temporary_failure_is_retried_then_delivered_once(
    tenant: Tenant, mx: SmtpSink
) -> None:
    rcpt = f"greylisted.{tenant.name}@example.org"
    mx.tempfail(rcpt, times=1)
    env_id = await send_one(tenant, rcpt)

    await tenant.wait_for_status(env_id, "delivered")
    shown = await timeline(tenant, env_id)
    assert [e["event"] for e in shown["events"]] == ["request", "soft_bounce", "delivered"]
    assert [e["attempt"] for e in shown["events"]] == [0, 1, 2]
    assert shown["events"][1]["err_code"] == 451
    assert len(mx.for_rcpt(rcpt)) == 1


async def test_temporary_failures_past_the_schedule_fail_with_status_4(
    tenant: Tenant, mx: SmtpSink
) -> None:
    rcpt = f"always.busy.{tenant.name}@example.org"
    mx.tempfail(rcpt, times=100)
    env_id = await send_one(tenant, rcpt)

    # The test schedule is 1s,1s,1s: four attempts, then give up.
    await tenant.wait_for_status(env_id, "failed", within=30)
    shown = await timeline(tenant, env_id)
    assert [e["event"] for e in shown["events"]] == [
        "request", "soft_bounce", "soft_bounce", "soft_bounce", "failed",
    ]  # fmt: skip
    assert shown["status_code"] == 4
    assert "gave up after 4 attempts" in shown["err_msg"]


@pytest.mark.parametrize(
    ("domain", "expected_code"),
    [("no-such-domain.example", 550), ("nomail.example", 556)],
    ids=["nxdomain", "null-mx"],
)
async def test_undeliverable_domain_ends_as_an_invalid_event(
    tenant: Tenant, receiver: HttpReceiver, domain: str, expected_code: int
) -> None:
    await tenant.add_webhook(receiver.url(f"/{tenant.name}"), ["invalid", "failed"])
    env_id = await send_one(tenant, f"someone@{domain}")
    assert await tenant.wait_for_status(env_id, "invalid", "failed") == "invalid"
    shown = await timeline(tenant, env_id)
    assert shown["status_code"] == 2
    assert shown["err_code"] == expected_code
    assert [e["event"] for e in shown["events"]] == ["request", "invalid"]
    pushes = await eventually(
        lambda: [
            p.json() for p in receiver.posts(f"/{tenant.name}") if p.json()["event"] != "verify"
        ],
        what="invalid push",
    )
    assert [(p["event"], p["type"], p["status"]) for p in pushes] == [
        ("invalid", "Deliver:SendFailed", 2)
    ]


async def test_message_of_another_tenant_is_not_found(tenant: Tenant, other_tenant: Tenant) -> None:
    env_id = await send_one(tenant, f"private.{tenant.name}@example.org")
    await tenant.wait_for_status(env_id, "delivered")
    theirs = await other_tenant.message(env_id)
    assert theirs.status_code == 404
    assert envelope(theirs)["Code"] == "not_found"
    listed = envelope(await other_tenant.client("events").get("/v1/messages"))["Result"]
    assert env_id not in {m["env_id"] for m in listed["messages"]}
