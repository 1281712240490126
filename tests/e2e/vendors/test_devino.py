"""Devino Telecom's email API (``/email/v1``) driven as the seed's examples do: plain HTTP,
Basic login:password (postwire's api_user:api_key), PascalCase JSON, and the
``{"Result", "Code", "Description"}`` envelope back. Devino has no Python SDK."""

from __future__ import annotations

import base64
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx

from postwire_testkit.api import Tenant
from postwire_testkit.smtp import SmtpSink
from postwire_testkit.wait import eventually


def devino(tenant: Tenant, password: str | None = None) -> httpx.AsyncClient:
    """A client configured the way a Devino user configures theirs: base URL and login."""
    return httpx.AsyncClient(
        base_url=f"{tenant.urls.ingest}/email/v1",
        auth=httpx.BasicAuth(tenant.api_user, password or tenant.api_key),
        headers={"Accept": "*/*"},
        timeout=30,
    )


def answer(response: httpx.Response, status: int = 200, code: str = "ok") -> Any:
    body = response.json()
    assert (response.status_code, body["Code"]) == (status, code), response.text
    assert set(body) == {"Result", "Code", "Description"}
    return body["Result"]


def task_body(tenant: Tenant, *addresses: str, **fields: Any) -> dict[str, Any]:
    return {
        "Name": "spring",
        "Sender": {"Address": tenant.sender, "Name": "Shop"},
        "Subject": "Spring for {{Name}}",
        "Body": {"Html": "<p>Hello {{Name}}</p>", "PlainText": "Hello {{Name}}"},
        "Recipients": [
            {"Address": a, "MergeFields": {"Name": a.split(".")[0].title()}} for a in addresses
        ],
        **fields,
    }


async def test_a_message_is_delivered_with_its_merge_fields(tenant: Tenant, mx: SmtpSink) -> None:
    ann = f"ann.{tenant.name}@example.org"
    pdf = base64.b64encode(b"%PDF-1.4 x" + b"0" * 300_000).decode()  # over 64 KB
    async with devino(tenant) as client:
        sent = answer(
            await client.post(
                "/Messages",
                json={
                    "Sender": {"Address": tenant.sender, "Name": "Shop"},
                    "Recipients": [{"Address": ann, "Name": "Ann", "MergeFields": {"Name": "Ann"}}],
                    "Subject": "Hello {{Name}}",
                    "Body": {"Html": "<p>Hi {{Name}}</p>", "PlainText": "Hi {{Name}}"},
                    "Attachments": [{"Name": "a.pdf", "Content": pdf}],
                },
            )
        )
    [message] = sent
    assert (message["Address"], message["State"]) == (ann, "Queued")

    async def arrived() -> bool:
        return bool(mx.for_rcpt(ann))

    await eventually(arrived, what="Ann's mail")
    [mail] = mx.for_rcpt(ann)
    assert mail.message["Subject"] == "Hello Ann"
    assert mail.message["From"] == f"Shop <{tenant.sender}>"
    [part] = list(mail.message.iter_attachments())
    assert (part.get_filename(), len(part.get_content())) == ("a.pdf", 300_010)
    # The same message everywhere: its MessageId is the env_id of the native API.
    assert await tenant.wait_for_status(message["MessageId"], "delivered") == "delivered"


async def test_a_task_is_sent_and_read_back_in_devinos_shape(tenant: Tenant, mx: SmtpSink) -> None:
    ann, bob = f"ann.{tenant.name}@example.org", f"bob.{tenant.name}@example.net"
    start = datetime.now(UTC) + timedelta(seconds=4)
    async with devino(tenant) as client:
        made = answer(
            await client.post(
                "/Tasks", json=task_body(tenant, ann, bob, StartDateTime=start.isoformat())
            ),
            201,
        )
        assert made["State"] == "Scheduled"
        assert made["Sender"] == {"Address": tenant.sender, "Name": "Shop"}
        assert made["Subject"] == "Spring for {{Name}}"
        assert made["Statistics"]["Total"] == 2
        attachments = f"/Tasks/{made['Id']}/Attachments"
        data = b"%PDF-1.4 y" + b"0" * 100_000  # over the default 64 KB body limit
        file = {"Name": "price list.pdf", "Content": base64.b64encode(data).decode()}
        added = answer(await client.post(attachments, json=file), 201)
        assert (added["Name"], added["Size"]) == ("price list.pdf", 100_010)
        listed = answer(await client.get(attachments))
        assert [a["Id"] for a in listed] == [added["Id"]]

        async def finished() -> dict[str, Any] | None:
            task = answer(await client.get(f"/Tasks/{made['Id']}"))
            done = task["State"] == "Completed" and task["Statistics"]["Delivered"] == 2
            return task if done else None

        task = await eventually(finished, within=40, what="the task delivered")
    assert task["Statistics"]["Queued"] == 2
    [to_bob] = mx.for_rcpt(bob)
    assert to_bob.message["Subject"] == "Spring for Bob"
    [part] = list(to_bob.message.iter_attachments())
    assert part.get_filename() == "price list.pdf"


async def test_a_task_is_cancelled_and_what_postwire_lacks_is_refused(tenant: Tenant) -> None:
    ann = f"ann.{tenant.name}@example.org"
    later = (datetime.now(UTC) + timedelta(hours=1)).isoformat()
    async with devino(tenant) as client:
        made = answer(
            await client.post("/Tasks", json=task_body(tenant, ann, StartDateTime=later)), 201
        )
        path = f"/Tasks/{made['Id']}"
        answer(
            await client.post(f"{path}/Attachments", json={"Name": "a.txt", "Content": "eA=="}), 201
        )
        assert answer(await client.delete(f"{path}/Attachments")) == {"Removed": 1}
        assert answer(await client.get(f"{path}/Attachments")) == []
        edited = await client.patch(path, json={"Name": "autumn"})
        assert "cancel it" in edited.json()["Description"]
        answer(edited, 400, "not_available")
        answer(await client.put(f"{path}/State", json={"State": "Paused"}), 400, "not_available")
        cancelled = answer(await client.put(f"{path}/State", json={"State": "Cancelled"}))
        assert cancelled["State"] == "Cancelled"
        again = await client.put(f"{path}/State", json={"State": "Cancelled"})
        answer(again, 400, "not_available")  # only a task that has not started

        books = task_body(tenant, ann, ContactGroups=[1])
        refused = await client.post("/Tasks", json=books)
        answer(refused, 400, "not_available")
        assert refused.json()["Description"].startswith("ContactGroups")
        bare = {"Sender": {"Address": tenant.sender}, "Recipients": [{"Address": ann}]}
        missing = await client.post("/Messages", json={**bare, "Body": {"PlainText": "x"}})
        answer(missing, 400, "empty_value")
        assert missing.json()["Description"] == "Subject is required"
        stranger = {**bare, "Subject": "x", "Body": {"PlainText": "x"}}
        stranger["Sender"] = {"Address": f"nobody@{tenant.domain}"}
        answer(await client.post("/Messages", json=stranger), 400, "invalid_value")
        answer(await client.get("/Tasks/0000000000000000000000000Z"), 404, "not_found")
        answer(await client.delete("/Messages"), 405, "not_available")
        xml = b"<Message><Subject>x</Subject></Message>"
        as_xml = await client.post("/Messages", content=xml, headers={"Content-Type": "text/xml"})
        answer(as_xml, 400, "not_available")

    async with httpx.AsyncClient(base_url=tenant.urls.ingest, timeout=30) as plain:
        other = await plain.get("/email/v2/Tasks/1", auth=(tenant.api_user, tenant.api_key))
        answer(other, 404, "not_found")
        assert "/email/v1" in other.json()["Description"]


async def test_wrong_credentials_are_refused_in_devinos_envelope(
    tenant: Tenant, other_tenant: Tenant
) -> None:
    ann = f"ann.{tenant.name}@example.org"
    message = {
        "Sender": {"Address": tenant.sender},
        "Recipients": [{"Address": ann}],
        "Subject": "x",
        "Body": {"PlainText": "x"},
    }
    async with devino(tenant, password="not-the-key") as client:
        refused = await client.post("/Messages", json=message)
        answer(refused, 401, "authorization_failed")
        answer(await client.get("/Tasks/0000000000000000000000000Z"), 401, "authorization_failed")
    async with devino(tenant) as client:
        made = answer(await client.post("/Tasks", json=task_body(tenant, ann)), 201)
    async with devino(other_tenant) as client:  # another account's task does not exist
        answer(await client.get(f"/Tasks/{made['Id']}"), 404, "not_found")
