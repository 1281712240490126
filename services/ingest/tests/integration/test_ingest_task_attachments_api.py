"""``/v1/tasks/{task_id}/attachments`` through ingest's own HTTP app (its routers, body
limits and error envelope) on the real PostgreSQL: multipart and base64 JSON uploads,
listing and removing, 4 MB in all, refused file types, another account's task as a
missing one, and a task that has started sending."""

from __future__ import annotations

import base64
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import httpx
import pytest

from postwire_common import db
from postwire_common.config import Settings
from postwire_common.crypto import Keyring, generate_key
from postwire_common.http.app import build_app
from postwire_common.identity import Identity
from postwire_common.ids import new_id
from postwire_ingest import accounts
from postwire_ingest.app import IngestService
from postwire_ingest.store import IngestStore
from postwire_testkit.infra import migrated_database, unique_name

pytestmark = pytest.mark.integration

MB = 1024 * 1024


@dataclass
class Api:
    pool: asyncpg.Pool
    client: httpx.AsyncClient

    async def tenant(self) -> tuple[str, httpx.BasicAuth]:
        made = await accounts.create_account(
            IngestStore(self.pool, Keyring([generate_key()])), unique_name("acct")
        )
        return made["account_id"], httpx.BasicAuth(made["api_user"], made["api_key"])

    async def task(self, account_id: str, state: str = "scheduled") -> str:
        """A minimal task row (not through TaskStore, whose shape is changing)."""
        task_id = new_id()
        await self.pool.execute(
            "INSERT INTO ingest.tasks (id, account_id, api_user, user_type, name, "
            "template_id, template_version, sender, send_at, state) "
            "VALUES ($1, $2, $3, 'batch', 't', $4, 1, 'news@shop.example', $5, $6)",
            task_id,
            account_id,
            f"{account_id}.batch",
            new_id(),
            datetime.now(UTC) + timedelta(days=1),
            state,
        )
        return task_id


@pytest.fixture(scope="module")
async def api() -> AsyncIterator[Api]:
    """ingest's app as ``postwire run ingest`` builds it, without starting the broker
    or the background loops: these routes need only the database."""
    async with migrated_database() as url:
        settings = Settings(database_url=url, secret_keys=generate_key(), env="development")
        service = IngestService(settings)
        await service.pool
        identity_pool = await db.create_pool(url, size=2)
        app = build_app(settings, [service])
        app.state.identity = Identity(identity_pool)
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://ingest") as client:
            yield Api(service.pool, client)
        await identity_pool.close()
        await service.pool.close()


def path(task_id: str) -> str:
    return f"/v1/tasks/{task_id}/attachments"


def answer(response: httpx.Response, status: int, code: str = "ok") -> Any:
    body = response.json()
    assert (response.status_code, body["Code"]) == (status, code), response.text
    return body["Result"]


async def upload(
    api: Api,
    auth: httpx.BasicAuth,
    task_id: str,
    filename: str,
    data: bytes,
    content_type: str | None = "application/octet-stream",
) -> httpx.Response:
    part = (filename, data) if content_type is None else (filename, data, content_type)
    return await api.client.post(path(task_id), files={"file": part}, auth=auth)


async def test_upload_list_and_remove(api: Api) -> None:
    me, auth = await api.tenant()
    mine = await api.task(me)
    made = answer(
        await upload(api, auth, mine, "Price list.pdf", b"%PDF-1", "application/pdf"), 201
    )
    assert made["filename"] == "Price list.pdf"
    assert (made["content_type"], made["size"]) == ("application/pdf", 6)
    untyped = answer(await upload(api, auth, mine, "notes.txt", b"hello", None), 201)
    assert untyped["content_type"] in ("text/plain", "application/octet-stream")
    as_json = await api.client.post(
        path(mine),
        json={
            "filename": "logo.png",
            "content": base64.b64encode(b"\x89PNG").decode(),
            "content_type": "image/png",
        },
        auth=auth,
    )
    logo = answer(as_json, 201)
    assert (logo["filename"], logo["content_type"], logo["size"]) == ("logo.png", "image/png", 4)

    listed = answer(await api.client.get(path(mine), auth=auth), 200)
    assert [a["id"] for a in listed["attachments"]] == [made["id"], untyped["id"], logo["id"]]
    assert (listed["size"], listed["max_size"]) == (6 + 5 + 4, 4 * MB)
    assert all("data" not in a and "content" not in a for a in listed["attachments"])

    answer(await api.client.delete(f"{path(mine)}/{made['id']}", auth=auth), 200)
    gone = await api.client.delete(f"{path(mine)}/{made['id']}", auth=auth)
    answer(gone, 404, "not_found")
    assert answer(await api.client.delete(path(mine), auth=auth), 200) == {"removed": 2}
    assert answer(await api.client.get(path(mine), auth=auth), 200)["attachments"] == []


async def test_four_mb_in_all(api: Api) -> None:
    me, auth = await api.tenant()
    whole = await api.task(me)
    answer(await upload(api, auth, whole, "whole.bin", b"a" * (4 * MB)), 201)
    refused = await upload(api, auth, whole, "byte.bin", b"b")
    answer(refused, 400, "size_exceeded")
    assert "4 MB in all" in refused.json()["Description"]

    alone = await api.task(me)
    answer(await upload(api, auth, alone, "big.bin", b"a" * (4 * MB + 1)), 400, "size_exceeded")
    as_json = await api.client.post(
        path(alone),
        json={"filename": "big.bin", "content": base64.b64encode(b"a" * (4 * MB + 1)).decode()},
        auth=auth,
    )
    answer(as_json, 400, "size_exceeded")
    answer(await upload(api, auth, alone, "ok.bin", b"a" * (4 * MB)), 201)  # base64 too:
    third = await api.task(me)
    exact = {"filename": "ok.bin", "content": base64.b64encode(b"a" * (4 * MB)).decode()}
    answer(await api.client.post(path(third), json=exact, auth=auth), 201)

    summed = await api.task(me)
    answer(await upload(api, auth, summed, "three.bin", b"a" * (3 * MB)), 201)
    answer(await upload(api, auth, summed, "over.bin", b"b" * (MB + 1)), 400, "size_exceeded")
    answer(await upload(api, auth, summed, "one.bin", b"b" * MB), 201)
    assert answer(await api.client.get(path(summed), auth=auth), 200)["size"] == 4 * MB


async def test_a_body_over_the_routes_limit_is_refused_before_it_is_read(api: Api) -> None:
    me, auth = await api.tenant()
    mine = await api.task(me)
    answer(await upload(api, auth, mine, "huge.bin", b"a" * (7 * MB)), 400, "size_exceeded")
    assert answer(await api.client.get(path(mine), auth=auth), 200)["attachments"] == []


@pytest.mark.parametrize(
    "filename", ["setup.exe", "Report.PDF.exe", "virus.exe. ", "run.ps1", "evil.exe::$DATA"]
)
async def test_executable_files_are_refused(api: Api, filename: str) -> None:
    me, auth = await api.tenant()
    mine = await api.task(me)
    refused = await upload(api, auth, mine, filename, b"MZ")
    answer(refused, 400, "invalid_value")
    assert "Not allowed attachement type" in refused.json()["Description"]
    as_json = {"filename": filename, "content": base64.b64encode(b"MZ").decode()}
    answer(await api.client.post(path(mine), json=as_json, auth=auth), 400, "invalid_value")
    assert answer(await api.client.get(path(mine), auth=auth), 200)["attachments"] == []


async def test_refused_types_names_and_forms(api: Api) -> None:
    me, auth = await api.tenant()
    mine = await api.task(me)
    typed = await upload(api, auth, mine, "report.pdf", b"MZ", "application/x-msdownload")
    answer(typed, 400, "invalid_value")
    answer(await upload(api, auth, mine, "mail.eml", b"x", "message/rfc822"), 400, "invalid_value")
    answer(await upload(api, auth, mine, "empty.txt", b""), 400, "empty_value")
    answer(await upload(api, auth, mine, "Report.pdf", b"1"), 201)
    duplicate = await upload(api, auth, mine, "report.PDF", b"2")
    answer(duplicate, 400, "invalid_value")
    assert "has an attachment named" in duplicate.json()["Description"]
    other_field = await api.client.post(
        path(mine), files={"file": ("a.txt", b"x")}, data={"name": "a"}, auth=auth
    )
    answer(other_field, 400, "invalid_value")
    no_filename = await api.client.post(
        path(mine), files={"file": (None, b"not a file")}, auth=auth
    )
    answer(no_filename, 400, "invalid_value")
    assert no_filename.json()["Description"] == "file: must be a file part (with a filename)"
    two_files = await api.client.post(
        path(mine), files=[("file", ("a.txt", b"x")), ("file", ("b.txt", b"y"))], auth=auth
    )
    answer(two_files, 400, "invalid_value")
    bad_base64 = {"filename": "a.txt", "content": "not base64!"}
    answer(await api.client.post(path(mine), json=bad_base64, auth=auth), 400, "invalid_value")
    answer(await api.client.get(path("not-an-id"), auth=auth), 400, "invalid_value")
    answer(await api.client.delete(f"{path(mine)}/nope", auth=auth), 400, "invalid_value")
    answer(await api.client.get(path(mine)), 401, "authorization_failed")


async def test_another_accounts_task_answers_as_a_missing_one(api: Api) -> None:
    _, auth = await api.tenant()
    other, other_auth = await api.tenant()
    theirs = await api.task(other)
    held = answer(await upload(api, other_auth, theirs, "a.txt", b"theirs"), 201)
    for task_id in (theirs, new_id()):
        calls = [
            api.client.get(path(task_id), auth=auth),
            upload(api, auth, task_id, "b.txt", b"mine"),
            api.client.delete(f"{path(task_id)}/{held['id']}", auth=auth),
            api.client.delete(path(task_id), auth=auth),
        ]
        for call in calls:
            response = await call
            answer(response, 404, "not_found")
            assert response.json()["Description"] == f"no task {task_id}"
    kept = answer(await api.client.get(path(theirs), auth=other_auth), 200)
    assert [a["id"] for a in kept["attachments"]] == [held["id"]]


async def test_a_task_that_started_sending_is_not_available(api: Api) -> None:
    me, auth = await api.tenant()
    mine = await api.task(me)
    held = answer(await upload(api, auth, mine, "a.txt", b"x"), 201)
    await api.pool.execute("UPDATE ingest.tasks SET state = 'sending' WHERE id = $1", mine)
    late = await upload(api, auth, mine, "b.txt", b"y")
    answer(late, 400, "not_available")
    assert "is sending" in late.json()["Description"]
    answer(await api.client.delete(f"{path(mine)}/{held['id']}", auth=auth), 400, "not_available")
    answer(await api.client.delete(path(mine), auth=auth), 400, "not_available")
    listed = answer(await api.client.get(path(mine), auth=auth), 200)  # still readable
    assert [a["id"] for a in listed["attachments"]] == [held["id"]]


async def test_the_document_describes_both_bodies(api: Api) -> None:
    document = (await api.client.get("/openapi.json")).json()
    operations = document["paths"]["/v1/tasks/{task_id}/attachments"]
    assert set(operations) == {"get", "post", "delete"}
    content = operations["post"]["requestBody"]["content"]
    assert set(content) == {"multipart/form-data", "application/json"}
    assert content["multipart/form-data"]["schema"]["required"] == ["file"]
    for operation in operations.values():
        assert "404" in operation["responses"]
    one = document["paths"]["/v1/tasks/{task_id}/attachments/{attachment_id}"]
    assert "404" in one["delete"]["responses"]
