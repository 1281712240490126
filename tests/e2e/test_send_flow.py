"""The first real path: send to several recipients, see each mail arrive at its MX, a
signed push per recipient, and the timeline in the API."""

from __future__ import annotations

import hashlib
import hmac

from postwire_testkit.api import Tenant, envelope
from postwire_testkit.http import HttpReceiver
from postwire_testkit.smtp import Received, SmtpSink
from postwire_testkit.wait import eventually


def expected_signature(app_key: str, timestamp: int, token: str) -> str:
    # API.md: hex(HMAC-SHA256(key=app_key, msg=str(timestamp) + token)), no separator.
    return hmac.new(app_key.encode(), f"{timestamp}{token}".encode(), hashlib.sha256).hexdigest()


async def test_send_reaches_mx_webhook_and_timeline(
    tenant: Tenant, mx: SmtpSink, receiver: HttpReceiver
) -> None:
    hook = await tenant.add_webhook(receiver.url(f"/{tenant.name}"), ["delivered"])
    rcpts = ["ann@example.org", f"bob.{tenant.name}@example.net", "Cid@Example.COM"]

    answer = await tenant.send(
        rcpts,
        **{"from": f"Ваш магазин, Inc. <{tenant.sender}>"},
        subject="Your order №42 ✓",
        text="Thanks for your order.\nSee you.",
        html="<p>Thanks for your <b>order</b>.</p>",
        headers={"X-Order": "42"},
        label="orders",
    )

    assert answer.status_code == 202, answer.text
    body = envelope(answer)
    assert body["Code"] == "ok"
    messages = body["Result"]["messages"]
    assert [m["rcpt"] for m in messages] == ["ann@example.org", rcpts[1], "Cid@example.com"]
    assert all(m["status"] == "queued" for m in messages)
    assert len({m["env_id"] for m in messages}) == 3

    # Each recipient's mail arrives once, as its own message, with its own Message-ID.
    for m in messages:
        # Other tests mail the same addresses: wait for this message, by its Message-ID.
        def mine(m: dict[str, str] = m) -> list[Received]:
            return [r for r in mx.for_rcpt(m["rcpt"]) if r.message["Message-ID"] == m["msg_id"]]

        await eventually(mine, what=f"mail to {m['rcpt']}")
        arrived = mine()
        assert len(arrived) == 1
        received = arrived[0]
        assert received.rcpt_tos == [m["rcpt"]]
        assert received.mail_from == tenant.sender
        mail = received.message
        assert mail["To"] == m["rcpt"]
        assert mail["From"].addresses[0].addr_spec == tenant.sender
        assert mail["From"].addresses[0].display_name == "Ваш магазин, Inc."
        assert mail["Subject"] == "Your order №42 ✓"
        assert mail["X-Order"] == "42"
        text = mail.get_body(("plain",)).get_content()
        assert text.replace("\r\n", "\n") == "Thanks for your order.\nSee you.\n"
        assert "<b>order</b>" in mail.get_body(("html",)).get_content()
        assert received.data.isascii()

    # One signed `delivered` push per recipient.
    env_ids = {m["env_id"] for m in messages}

    def delivered_pushes() -> dict[str, dict]:
        pushes = [p.json() for p in receiver.posts(f"/{tenant.name}")]
        return {p["env_id"]: p for p in pushes if p.get("event") == "delivered"}

    await eventually(lambda: set(delivered_pushes()) == env_ids, what="three delivered pushes")
    by_env = {m["env_id"]: m for m in messages}
    for env_id, push in delivered_pushes().items():
        assert push["signature"] == expected_signature(
            hook["app_key"], push["timestamp"], push["token"]
        )
        assert len(push["token"]) >= 32
        assert push["msg_id"] == by_env[env_id]["msg_id"]
        assert push["rcpt"] == by_env[env_id]["rcpt"]
        assert push["from"] == tenant.sender
        assert push["account"] == tenant.sender
        assert push["status"] == 0
        assert push["err_code"] == 250
        assert push["label"] == "orders"
        assert push["type"] == "Deliver:SendSuccessfully"
    tokens = [p["token"] for p in delivered_pushes().values()]
    assert len(set(tokens)) == len(tokens)

    # The timeline, in order.
    for m in messages:
        shown = envelope(await tenant.message(m["env_id"]))["Result"]
        assert shown["status"] == "delivered"
        assert shown["status_code"] == 0
        assert shown["msg_id"] == m["msg_id"]
        assert shown["subject"] == "Your order №42 ✓"
        assert shown["label"] == "orders"
        assert [e["event"] for e in shown["events"]] == ["request", "delivered"]
        assert [e["type"] for e in shown["events"]] == [
            "Deliver:Request",
            "Deliver:SendSuccessfully",
        ]
        assert shown["events"][1]["err_code"] == 250


async def test_search_finds_messages_by_recipient_and_status(tenant: Tenant, mx: SmtpSink) -> None:
    rcpt = f"search.{tenant.name}@example.org"
    answer = await tenant.send([rcpt], label="search")
    env_id = envelope(answer)["Result"]["messages"][0]["env_id"]
    await tenant.wait_for_status(env_id, "delivered")

    found = envelope(await tenant.client("events").get("/v1/messages", params={"rcpt": rcpt}))[
        "Result"
    ]
    assert [m["env_id"] for m in found["messages"]] == [env_id]
    [shown] = found["messages"]
    assert (shown["method"], shown["template_id"], shown["task_id"]) == ("api", None, None)
    for params, expected in (
        ({"status": "failed"}, []),
        ({"method": "api"}, [env_id]),
        ({"method": "task"}, []),
        ({"template_id": "T1"}, []),
        ({"task_id": "K1"}, []),
    ):
        answer = await tenant.client("events").get("/v1/messages", params={"rcpt": rcpt, **params})
        assert [m["env_id"] for m in envelope(answer)["Result"]["messages"]] == expected, params


async def test_idempotency_key_makes_a_retry_safe(tenant: Tenant, mx: SmtpSink) -> None:
    rcpt = f"once.{tenant.name}@example.org"
    first = await tenant.send([rcpt], idempotency_key="order-7")
    again = await tenant.send([rcpt], idempotency_key="order-7")
    assert first.status_code == again.status_code == 202
    assert envelope(first)["Result"] == envelope(again)["Result"]

    env_id = envelope(first)["Result"]["messages"][0]["env_id"]
    await tenant.wait_for_status(env_id, "delivered")
    assert len(mx.for_rcpt(rcpt)) == 1

    other = await tenant.send([rcpt], idempotency_key="order-7", subject="changed")
    assert other.status_code == 400
    assert envelope(other)["Code"] == "invalid_value"
