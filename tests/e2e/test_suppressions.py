"""Suppression lists: a hard bounce adds the address, an account adds and removes its
own, and a suppressed address is answered ``suppressed`` without any SMTP attempt."""

from __future__ import annotations

from typing import Any

import httpx

from postwire_testkit.api import Tenant, envelope
from postwire_testkit.smtp import SmtpSink
from postwire_testkit.wait import eventually


def api(tenant: Tenant) -> httpx.AsyncClient:
    return tenant.client("events")


async def result(answer: httpx.Response, status: int = 200) -> Any:
    assert answer.status_code == status, answer.text
    return envelope(answer)["Result"]


async def listed(tenant: Tenant, **params: str) -> list[dict[str, Any]]:
    found = await result(await api(tenant).get("/v1/suppressions", params=params))
    return list(found["suppressions"])


async def send(tenant: Tenant, rcpts: list[str]) -> list[dict[str, str]]:
    return list((await result(await tenant.send(rcpts), 202))["messages"])


async def test_a_hard_bounce_suppresses_the_address_for_the_next_send(
    tenant: Tenant, mx: SmtpSink
) -> None:
    rcpt = f"Gone.{tenant.name}@example.org"
    mx.reject(rcpt, "550 5.1.1 <{}>: user unknown")
    [first] = await send(tenant, [rcpt])
    assert await tenant.wait_for_status(first["env_id"], "failed") == "failed"

    async def on_list() -> list[dict[str, Any]]:
        return await listed(tenant, reason="hard_bounce")

    [entry] = await eventually(on_list, what="the bounced address suppressed")
    assert entry["address"] == rcpt.lower()
    assert entry["source_env_id"] == first["env_id"]

    async def answered_suppressed() -> list[dict[str, str]] | None:
        other = f"ok.{tenant.name}@example.org"
        messages = await send(tenant, [rcpt.upper(), other])
        return messages if messages[0]["status"] == "suppressed" else None

    # ingest learns of it over the bus: poll until its copy has it.
    messages = await eventually(answered_suppressed, what="the next send answered suppressed")
    assert messages[1]["status"] == "queued"
    suppressed = messages[0]
    assert await tenant.wait_for_status(suppressed["env_id"], "suppressed") == "suppressed"
    shown = await result(await tenant.message(suppressed["env_id"]))
    assert [e["event"] for e in shown["events"]] == ["request", "invalid"]
    assert shown["status_code"] == 2
    await eventually(lambda: mx.for_rcpt(messages[1]["rcpt"]), what="the other one delivered")
    assert mx.for_rcpt(rcpt) == []  # the 550 was an answer to RCPT: no mail, then or now


async def test_an_account_adds_and_removes_addresses(tenant: Tenant, mx: SmtpSink) -> None:
    rcpt = f"manual.{tenant.name}@example.org"
    added = await result(await api(tenant).post("/v1/suppressions", json={"address": rcpt}), 201)
    assert (added["address"], added["reason"]) == (rcpt, "manual")

    async def suppressed_now() -> dict[str, str] | None:
        [m] = await send(tenant, [rcpt])  # sent until ingest's copy of the list has it
        return m if m["status"] == "suppressed" else None

    suppressed = await eventually(suppressed_now, what="sends answered suppressed")
    assert await tenant.wait_for_status(suppressed["env_id"], "suppressed") == "suppressed"
    await result(await api(tenant).delete(f"/v1/suppressions/{rcpt}"))
    assert await listed(tenant, address=rcpt) == []

    async def queued_again() -> str | None:
        [m] = await send(tenant, [rcpt])
        return m["env_id"] if m["status"] == "queued" else None

    queued = await eventually(queued_again, what="sends queued again")
    await tenant.wait_for_status(queued, "delivered")
    # Mail sent before ingest had the list went out; the one answered suppressed did not.
    arrived = {r.message["Message-ID"] for r in mx.for_rcpt(rcpt)}
    assert suppressed["msg_id"] not in arrived
    answer = await api(tenant).delete(f"/v1/suppressions/{rcpt}")
    assert answer.status_code == 404


async def test_lists_filter_paginate_and_refuse_bad_input(
    tenant: Tenant, other_tenant: Tenant
) -> None:
    for n in range(5):
        reason = "complaint" if n % 2 else "manual"
        body = {"address": f"p{n}.{tenant.name}@example.org", "reason": reason}
        await result(await api(tenant).post("/v1/suppressions", json=body), 201)
    first = await result(await api(tenant).get("/v1/suppressions", params={"limit": 3}))
    assert len(first["suppressions"]) == 3
    rest = await result(
        await api(tenant).get(
            "/v1/suppressions", params={"limit": 3, "cursor": first["next_cursor"]}
        )
    )
    seen = [s["address"] for s in first["suppressions"] + rest["suppressions"]]
    assert sorted(seen) == sorted(f"p{n}.{tenant.name}@example.org" for n in range(5))
    assert {s["address"] for s in await listed(tenant, reason="complaint")} == {
        f"p{n}.{tenant.name}@example.org" for n in (1, 3)
    }
    assert await listed(other_tenant) == []  # another account sees nothing of it
    answer = await api(other_tenant).delete(f"/v1/suppressions/p0.{tenant.name}@example.org")
    assert answer.status_code == 404
    for body in ({"address": "not an address"}, {"address": "a@b.example", "reason": "x"}):
        answer = await api(tenant).post("/v1/suppressions", json=body)
        assert answer.status_code == 400, answer.text
