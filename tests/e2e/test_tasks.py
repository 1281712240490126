"""Batch sending tasks with typed-in recipients: sent once when due, bad and duplicate
rows reported with their numbers, cancellable until they start, and holding on to their
template while scheduled."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import httpx

from postwire_testkit.api import Tenant, envelope
from postwire_testkit.smtp import SmtpSink
from postwire_testkit.wait import eventually


def result(answer: httpx.Response, status: int = 200) -> Any:
    assert answer.status_code == status, answer.text
    return envelope(answer)["Result"]


async def template(tenant: Tenant) -> str:
    body = {
        "name": "news",
        "type": "trigger",
        "subject": "News for {{name}}",
        "text": "Hello {{name}}",
    }
    return str(result(await tenant.client("ingest").post("/v1/templates", json=body), 201)["id"])


async def create(tenant: Tenant, **fields: Any) -> httpx.Response:
    body = {"name": "spring", "from": tenant.sender, **fields}
    return await tenant.client("ingest").post("/v1/tasks", json=body)


async def task_state(tenant: Tenant, task_id: str, *states: str) -> dict[str, Any]:
    async def reached() -> dict[str, Any] | None:
        task = result(await tenant.client("ingest").get(f"/v1/tasks/{task_id}"))
        return task if task["state"] in states else None

    found: dict[str, Any] = await eventually(reached, within=30, what=f"task in {states}")
    return found


async def test_a_task_sends_once_and_reports_bad_rows(tenant: Tenant, mx: SmtpSink) -> None:
    template_id = await template(tenant)
    ann, bob = f"ann.{tenant.name}@example.org", f"bob.{tenant.name}@example.net"
    made = result(
        await create(
            tenant,
            template_id=template_id,
            label="spring",
            recipients=[
                {"address": ann, "variables": {"name": "Ann"}},
                "not an address",
                {"address": bob, "variables": {"name": "Bob"}},
                {"address": ann.upper(), "variables": {"name": "Ann again"}},
            ],
        ),
        201,
    )
    assert made["state"] == "scheduled"
    assert (made["total"], made["invalid"]) == (4, 2)
    assert [(r["row"], r["reason"][:12]) for r in made["invalid_rows"]] == [
        (2, made["invalid_rows"][0]["reason"][:12]),
        (4, "duplicate of"),
    ]
    done = await task_state(tenant, made["id"], "completed", "failed")
    assert (done["state"], done["queued"], done["suppressed"], done["error"]) == (
        "completed", 2, 0, None
    )  # fmt: skip

    async def both() -> bool:
        return bool(mx.for_rcpt(ann)) and bool(mx.for_rcpt(bob))

    await eventually(both, what="both recipients' mail")
    [to_ann] = mx.for_rcpt(ann)
    assert to_ann.message["Subject"] == "News for Ann"
    assert len(mx.for_rcpt(bob)) == 1

    async def details() -> list[dict[str, Any]]:
        found = result(
            await tenant.client("events").get("/v1/messages", params={"task_id": made["id"]})
        )
        return list(found["messages"]) if len(found["messages"]) == 2 else []

    for message in await eventually(details, what="sending details by task"):
        assert (message["method"], message["template_id"], message["label"]) == (
            "task", template_id, "spring"
        )  # fmt: skip


async def test_a_scheduled_task_can_be_cancelled_until_it_starts(
    tenant: Tenant, mx: SmtpSink
) -> None:
    template_id = await template(tenant)
    rcpt = f"later.{tenant.name}@example.org"
    later = (datetime.now(UTC) + timedelta(hours=1)).isoformat()
    made = result(
        await create(
            tenant,
            template_id=template_id,
            send_at=later,
            recipients=[{"address": rcpt, "variables": {"name": "L"}}],
        ),
        201,
    )
    assert made["state"] == "scheduled"
    # A scheduled task holds on to its template.
    held = await tenant.client("ingest").delete(f"/v1/templates/{template_id}")
    assert held.status_code == 400, held.text
    assert envelope(held)["Code"] == "not_available"

    state = f"/v1/tasks/{made['id']}/state"
    cancelled = result(await tenant.client("ingest").put(state, json={"state": "cancelled"}))
    assert cancelled["state"] == "cancelled"
    again = await tenant.client("ingest").put(state, json={"state": "cancelled"})
    assert (again.status_code, envelope(again)["Code"]) == (400, "not_available")
    other = await tenant.client("ingest").put(state, json={"state": "sending"})
    assert other.status_code == 400, other.text
    deleted = await tenant.client("ingest").delete(f"/v1/templates/{template_id}")
    assert deleted.status_code == 200, deleted.text
    assert mx.for_rcpt(rcpt) == []


async def test_a_started_task_cannot_be_cancelled(tenant: Tenant) -> None:
    template_id = await template(tenant)
    made = result(
        await create(
            tenant,
            template_id=template_id,
            recipients=[{"address": f"now.{tenant.name}@example.org", "variables": {"name": "N"}}],
        ),
        201,
    )
    await task_state(tenant, made["id"], "completed")
    answer = await tenant.client("ingest").put(
        f"/v1/tasks/{made['id']}/state", json={"state": "cancelled"}
    )
    assert (answer.status_code, envelope(answer)["Code"]) == (400, "not_available")


async def test_bad_tasks_are_refused_and_make_nothing(tenant: Tenant, other_tenant: Tenant) -> None:
    template_id = await template(tenant)
    rcpt = {"address": f"x.{tenant.name}@example.org", "variables": {}}
    cases = [
        ({"template_id": template_id, "recipients": [rcpt]}, 400, "missing_macros"),
        ({"template_id": template_id, "recipients": []}, 400, "invalid_value"),
        ({"template_id": template_id, "recipients": ["a@example.org"] * 11}, 400,
         "invalid_value"),
        ({"template_id": template_id, "recipients": ["bad"]}, 400, "invalid_value"),
        ({"template_id": template_id, "recipients": ["a@example.org"],
          "send_at": (datetime.now(UTC) + timedelta(days=400)).isoformat()}, 400,
         "invalid_value"),
        ({"template_id": await template(other_tenant), "recipients": ["a@example.org"]}, 404,
         "not_found"),
    ]  # fmt: skip
    for fields, status, code in cases:
        answer = await create(tenant, **fields)
        assert (answer.status_code, envelope(answer)["Code"]) == (status, code), fields
    listed = result(await tenant.client("ingest").get("/v1/tasks"))
    assert listed["tasks"] == []


async def test_another_accounts_task_is_invisible(tenant: Tenant, other_tenant: Tenant) -> None:
    template_id = await template(tenant)
    later = (datetime.now(UTC) + timedelta(hours=1)).isoformat()
    made = result(
        await create(
            tenant,
            template_id=template_id,
            send_at=later,
            recipients=[{"address": "a@example.org", "variables": {"name": "A"}}],
        ),
        201,
    )
    theirs = other_tenant.client("ingest")
    assert (await theirs.get(f"/v1/tasks/{made['id']}")).status_code == 404
    cancel = await theirs.put(f"/v1/tasks/{made['id']}/state", json={"state": "cancelled"})
    assert cancel.status_code == 404
    assert result(await tenant.client("ingest").get(f"/v1/tasks/{made['id']}"))["state"] == (
        "scheduled"
    )


async def test_the_sample_file_names_the_templates_parameters(
    tenant: Tenant, other_tenant: Tenant
) -> None:
    template_id = await template(tenant)
    answer = await tenant.client("ingest").get(
        "/v1/tasks/sample", params={"template_id": template_id}
    )
    assert answer.status_code == 200, answer.text
    assert answer.headers["content-type"].startswith("text/csv")
    assert answer.text.splitlines()[0] == "address,name"
    theirs = await other_tenant.client("ingest").get(
        "/v1/tasks/sample", params={"template_id": template_id}
    )
    assert theirs.status_code == 404, theirs.text
    missing = await tenant.client("ingest").get("/v1/tasks/sample")
    assert missing.status_code == 400, missing.text
