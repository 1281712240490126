"""Labels through the API: made explicitly or by sending with one, listed in pages, shown,
deleted; another account sees none of them. ``tracking`` on a send is accepted and kept
with the request's content."""

from __future__ import annotations

import json
from typing import Any

import asyncpg
import httpx

from postwire_testkit.api import Tenant, envelope


def api(tenant: Tenant) -> httpx.AsyncClient:
    return tenant.client("ingest")


def result(answer: httpx.Response, status: int = 200) -> Any:
    assert answer.status_code == status, answer.text
    return envelope(answer)["Result"]


async def names(tenant: Tenant) -> list[str]:
    return [label["name"] for label in result(await api(tenant).get("/v1/labels"))["labels"]]


async def test_labels_are_made_listed_shown_and_deleted(tenant: Tenant) -> None:
    made = [
        result(await api(tenant).post("/v1/labels", json={"name": f"batch {n}"}), 201)
        for n in range(3)
    ]
    again = await api(tenant).post("/v1/labels", json={"name": "batch 0"})
    assert again.status_code == 409, again.text
    page = result(await api(tenant).get("/v1/labels", params={"limit": 2}))
    assert [label["name"] for label in page["labels"]] == ["batch 0", "batch 1"]
    rest = result(
        await api(tenant).get("/v1/labels", params={"limit": 2, "cursor": page["next_cursor"]})
    )
    assert [label["name"] for label in rest["labels"]] == ["batch 2"]
    assert rest["next_cursor"] is None
    shown = result(await api(tenant).get(f"/v1/labels/{made[1]['id']}"))
    assert shown["name"] == "batch 1"
    result(await api(tenant).delete(f"/v1/labels/{made[1]['id']}"))
    assert await names(tenant) == ["batch 0", "batch 2"]
    gone = await api(tenant).get(f"/v1/labels/{made[1]['id']}")
    assert gone.status_code == 404, gone.text


async def test_sending_with_a_new_label_makes_it(tenant: Tenant) -> None:
    answer = await tenant.send([f"labelled.{tenant.name}@example.org"], label="spring sale")
    assert answer.status_code == 202, answer.text
    assert await names(tenant) == ["spring sale"]
    again = await tenant.send([f"labelled2.{tenant.name}@example.org"], label="spring sale")
    assert again.status_code == 202, again.text
    assert await names(tenant) == ["spring sale"]  # once


async def test_bad_labels_are_refused_and_change_nothing(tenant: Tenant) -> None:
    for body in ({"name": ""}, {"name": "a\r\nBcc: x@evil.example"}, {"name": "x" * 65}, {}):
        answer = await api(tenant).post("/v1/labels", json=body)
        assert answer.status_code == 400, answer.text
    answer = await api(tenant).get("/v1/labels", params={"cursor": "not-a-cursor"})
    assert answer.status_code == 400, answer.text
    injected = await tenant.send(
        [f"inj.{tenant.name}@example.org"], label="promo\r\nBcc: x@evil.example"
    )
    assert injected.status_code == 400, injected.text
    assert await names(tenant) == []


async def test_another_accounts_labels_are_invisible(tenant: Tenant, other_tenant: Tenant) -> None:
    mine = result(await api(tenant).post("/v1/labels", json={"name": "private"}), 201)
    assert await names(other_tenant) == []
    for method in ("GET", "DELETE"):
        answer = await api(other_tenant).request(method, f"/v1/labels/{mine['id']}")
        assert answer.status_code == 404, answer.text
    assert await names(tenant) == ["private"]


async def test_tracking_is_accepted_and_kept_with_the_content(
    tenant: Tenant, db: asyncpg.Connection
) -> None:
    tracking = {"opens": True, "clicks": False, "unsubscribe": True}
    answer = await tenant.send([f"tracked.{tenant.name}@example.org"], tracking=tracking)
    assert answer.status_code == 202, answer.text
    [message] = envelope(answer)["Result"]["messages"]
    stored = await db.fetchval(
        "SELECT c.tracking FROM ingest.contents c JOIN ingest.messages m "
        "ON m.request_id = c.id WHERE m.env_id = $1",
        message["env_id"],
    )
    kept = json.loads(stored)
    assert {k: kept[k] for k in tracking} == tracking
    assert kept["base"] == tenant.urls.ingest.rstrip("/")  # POSTWIRE_PUBLIC_URL
    bad = await tenant.send([f"tracked.{tenant.name}@example.org"], tracking={"pixels": True})
    assert bad.status_code == 400, bad.text
