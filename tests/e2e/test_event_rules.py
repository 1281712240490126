"""Topics, queues, subscriptions and event rules over HTTP: the seed's rules for rule
endpoints, every refusal changing nothing, cleanup on delete, and tenants kept apart."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from postwire_testkit.api import Tenant, envelope
from postwire_testkit.http import HttpReceiver


def api(tenant: Tenant) -> httpx.AsyncClient:
    return tenant.client("notifier")


async def ok(answer: httpx.Response, status: int = 200) -> Any:
    body = envelope(answer)
    assert answer.status_code == status, answer.text
    assert body["Code"] == "ok"
    return body["Result"]


async def refused(answer: httpx.Response, code: str, status: int = 400) -> str:
    body = envelope(answer)
    assert (answer.status_code, body["Code"]) == (status, code), answer.text
    return str(body["Description"])


async def snapshot(tenant: Tenant) -> tuple[Any, ...]:
    topics = await ok(await api(tenant).get("/v1/topics"))
    rules = await ok(await api(tenant).get("/v1/event-rules"))
    subs = [
        await ok(await api(tenant).get(f"/v1/topics/{t['name']}/subscriptions")) for t in topics
    ]
    return (
        [t["name"] for t in topics],
        [r["name"] for r in rules],
        [[s["name"] for s in group] for group in subs],
    )


async def test_topics_and_queues_are_made_listed_and_deleted(tenant: Tenant) -> None:
    await ok(await api(tenant).post("/v1/topics", json={"name": "orders.results"}), 201)
    await ok(await api(tenant).post("/v1/topics", json={"name": "sms.alerts"}), 201)
    await refused(
        await api(tenant).post("/v1/topics", json={"name": "orders.results"}),
        "already_exists",
        409,
    )
    queue = await ok(await api(tenant).post("/v1/queues", json={"name": "results"}), 201)
    assert (queue["visibility_timeout"], queue["message_retention"]) == (30, 345600)
    assert queue["max_message_size"] == 65536
    names = [t["name"] for t in await ok(await api(tenant).get("/v1/topics"))]
    assert names == ["orders.results", "sms.alerts"]
    await ok(await api(tenant).delete("/v1/topics/sms.alerts"))
    await refused(await api(tenant).delete("/v1/topics/sms.alerts"), "not_found", 404)


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("/v1/topics", {"name": ""}),
        ("/v1/topics", {"name": "a" * 257}),
        ("/v1/topics", {"name": "with space"}),
        ("/v1/topics", {"name": "slash/y"}),
        ("/v1/queues", {"name": "q" * 121}),
        ("/v1/queues", {"name": "q", "visibility_timeout": 0}),
        ("/v1/queues", {"name": "q", "visibility_timeout": 43201}),
        ("/v1/queues", {"name": "q", "message_retention": 59}),
        ("/v1/queues", {"name": "q", "max_message_size": 65537}),
    ],
)
async def test_bad_names_and_settings_are_refused(
    tenant: Tenant, path: str, body: dict[str, Any]
) -> None:
    answer = await api(tenant).post(path, json=body)
    assert answer.status_code == 400
    assert envelope(answer)["Code"] in ("invalid_value", "empty_value")
    assert await ok(await api(tenant).get(path)) == []


async def test_subscriptions_need_their_topic_and_queue(tenant: Tenant) -> None:
    await ok(await api(tenant).post("/v1/topics", json={"name": "t"}), 201)
    sub = {"name": "s", "endpoint": "queue:missing"}
    text = await refused(
        await api(tenant).post("/v1/topics/t/subscriptions", json=sub), "invalid_value"
    )
    assert "no queue missing" in text
    await refused(
        await api(tenant).post("/v1/topics/nope/subscriptions", json=sub), "not_found", 404
    )
    await refused(
        await api(tenant).post(
            "/v1/topics/t/subscriptions",
            json={"name": "s", "endpoint": "http://x.example/", "notify_strategy": "SOMETIMES"},
        ),
        "invalid_value",
    )
    await ok(await api(tenant).post("/v1/queues", json={"name": "q1"}), 201)
    made = await ok(
        await api(tenant).post(
            "/v1/topics/t/subscriptions",
            json={"name": "s", "endpoint": "queue:q1", "content_format": "JSON"},
        ),
        201,
    )
    assert made == {
        "topic": "t",
        "name": "s",
        "endpoint": "queue:q1",
        "notify_strategy": "BACKOFF_RETRY",
        "content_format": "JSON",
    }
    # A queue that subscriptions push into is not deleted from under them.
    await refused(await api(tenant).delete("/v1/queues/q1"), "not_available")
    await ok(await api(tenant).delete("/v1/topics/t/subscriptions/s"))
    await ok(await api(tenant).delete("/v1/queues/q1"))


RULE_REFUSALS = [
    pytest.param(["topic:existing", "queue:existing"], "cannot be combined", id="topic-and-queue"),
    pytest.param(["topic:existing", "http://hooks.example/in"], "cannot be combined", id="mixed"),
    pytest.param(["topic:existing", "topic:other"], "at most one topic", id="two-topics"),
    pytest.param(["topic:sms.codes"], "SMS-only", id="sms-topic"),
    pytest.param(["queue:nowhere"], "no queue nowhere", id="missing-queue"),
    pytest.param(["topic:nowhere"], "no topic nowhere", id="missing-topic"),
    pytest.param(["ftp://x.example/"], "endpoint", id="bad-endpoint"),
    pytest.param([], "at least one", id="no-endpoint"),
]


@pytest.mark.parametrize(("endpoints", "why"), RULE_REFUSALS)
async def test_every_rule_refusal_names_the_rule_it_breaks_and_creates_nothing(
    tenant: Tenant, endpoints: list[str], why: str
) -> None:
    for topic in ("existing", "other", "sms.codes"):
        await ok(await api(tenant).post("/v1/topics", json={"name": topic}), 201)
    await ok(await api(tenant).post("/v1/queues", json={"name": "existing"}), 201)
    before = await snapshot(tenant)
    answer = await api(tenant).post(
        "/v1/event-rules",
        json={"name": "r1", "event_types": ["Deliver:SendSuccessfully"], "endpoints": endpoints},
    )
    assert answer.status_code == 400, answer.text
    assert envelope(answer)["Code"] in ("invalid_value", "empty_value")
    assert why in envelope(answer)["Description"]
    assert await snapshot(tenant) == before


async def test_unknown_event_types_are_refused(tenant: Tenant) -> None:
    answer = await api(tenant).post(
        "/v1/event-rules",
        json={"name": "r", "event_types": ["Deliver:Whatever"], "endpoints": ["queue:q"]},
    )
    assert "Deliver:Whatever" in await refused(answer, "invalid_value")


async def test_a_rule_makes_its_own_topic_and_deleting_it_removes_only_that(
    tenant: Tenant, receiver: HttpReceiver
) -> None:
    await ok(await api(tenant).post("/v1/queues", json={"name": "mine"}), 201)
    await ok(await api(tenant).post("/v1/topics", json={"name": "kept"}), 201)
    url = receiver.url("/rule-endpoint")
    rule = await ok(
        await api(tenant).post(
            "/v1/event-rules",
            json={
                "name": "results",
                "event_types": ["Deliver:SendSuccessfully", "Deliver:SendFailed"],
                "endpoints": [url, "queue:mine"],
            },
        ),
        201,
    )
    assert rule["topic"] == "rule.results"
    assert rule["endpoints"] == [url, "queue:mine"]
    subs = await ok(await api(tenant).get("/v1/topics/rule.results/subscriptions"))
    assert [(s["name"], s["endpoint"], s["rule"]) for s in subs] == [
        ("http-1", url, "results"),
        ("queue-2", "queue:mine", "results"),
    ]
    # What the rule made is the rule's: changed or deleted only through it.
    await refused(await api(tenant).delete("/v1/topics/rule.results"), "not_available")
    await refused(
        await api(tenant).delete("/v1/topics/rule.results/subscriptions/http-1"), "not_available"
    )
    for method in ("PUT", "PATCH"):
        answer = await api(tenant).request(method, "/v1/event-rules/results", json={})
        await refused(answer, "not_available")
    await refused(
        await api(tenant).post(
            "/v1/event-rules",
            json={
                "name": "results",
                "event_types": ["Deliver:Request"],
                "endpoints": ["queue:mine"],
            },
        ),
        "already_exists",
        409,
    )

    await ok(await api(tenant).delete("/v1/event-rules/results"))
    assert await snapshot(tenant) == (["kept"], [], [[]])
    assert [q["name"] for q in await ok(await api(tenant).get("/v1/queues"))] == ["mine"]


async def test_a_rule_outlives_its_topic(tenant: Tenant) -> None:
    await ok(await api(tenant).post("/v1/topics", json={"name": "shared"}), 201)
    await ok(
        await api(tenant).post(
            "/v1/event-rules",
            json={
                "name": "to-topic",
                "event_types": ["Deliver:SendFailed"],
                "endpoints": ["topic:shared"],
            },
        ),
        201,
    )
    await ok(await api(tenant).delete("/v1/topics/shared"))
    rule = await ok(await api(tenant).get("/v1/event-rules/to-topic"))
    assert (rule["topic"], rule["undeliverable"]) == ("shared", 0)


async def test_another_accounts_resources_are_not_found(
    tenant: Tenant, other_tenant: Tenant
) -> None:
    await ok(await api(tenant).post("/v1/topics", json={"name": "private"}), 201)
    await ok(await api(tenant).post("/v1/queues", json={"name": "private"}), 201)
    await ok(
        await api(tenant).post(
            "/v1/event-rules",
            json={
                "name": "private",
                "event_types": ["Deliver:Request"],
                "endpoints": ["queue:private"],
            },
        ),
        201,
    )
    theirs = api(other_tenant)
    for path in ("/v1/event-rules/private", "/v1/queues/private"):
        await refused(await theirs.get(path), "not_found", 404)
        await refused(await theirs.delete(path), "not_found", 404)
    await refused(await theirs.delete("/v1/topics/private"), "not_found", 404)
    await refused(await theirs.get("/v1/topics/rule.private/subscriptions"), "not_found", 404)
    assert await ok(await theirs.get("/v1/event-rules")) == []
    # Names are per account: the other account may use the same ones.
    await ok(await theirs.post("/v1/topics", json={"name": "private"}), 201)
