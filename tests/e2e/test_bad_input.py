"""Bad input gets a clear error in the envelope and changes nothing."""

from __future__ import annotations

import base64
from collections.abc import AsyncIterator
from typing import Any

import asyncpg
import httpx
import pytest

from postwire_testkit.api import Tenant, envelope
from postwire_testkit.platform import PlatformProcess
from postwire_testkit.smtp import SmtpSink

from .conftest import ADMIN_TOKEN


async def queued_count(db: asyncpg.Connection) -> int:
    return int(await db.fetchval("SELECT count(*) FROM ingest.messages"))


async def assert_rejected(
    tenant: Tenant, db: asyncpg.Connection, mx: SmtpSink, body: dict[str, Any], code: str
) -> str:
    before_rows, before_mail = await queued_count(db), len(mx.received)
    answer = await tenant.client("ingest").post("/v1/messages", json=body)
    reply = envelope(answer)
    assert reply["Code"] == code, reply
    assert answer.status_code == 400
    assert reply["Result"] is None
    assert await queued_count(db) == before_rows
    assert len(mx.received) == before_mail
    return str(reply["Description"])


def body(tenant: Tenant, **changes: Any) -> dict[str, Any]:
    value: dict[str, Any] = {
        "from": tenant.sender,
        "to": ["ann@example.org"],
        "subject": "Hello",
        "text": "Hi",
    }
    value.update(changes)
    return {k: v for k, v in value.items() if v is not None}


INJECTIONS = [
    pytest.param({"subject": "Hi\r\nBcc: victim@example.com"}, id="crlf-in-subject"),
    pytest.param({"subject": "Hi\nBcc: victim@example.com"}, id="lf-in-subject"),
    pytest.param({"subject": "Hi\rBcc: victim@example.com"}, id="cr-in-subject"),
    pytest.param({"from": "Evil\r\nBcc: victim@example.com <{sender}>"}, id="crlf-in-name"),
    pytest.param({"headers": {"X-Tag": "a\r\nBcc: victim@example.com"}}, id="crlf-in-header"),
    pytest.param({"headers": {"X-Tag\r\nBcc": "a"}}, id="crlf-in-header-name"),
    pytest.param({"headers": {"Bcc": "victim@example.com"}}, id="reserved-header"),
    pytest.param({"label": "a\r\nb"}, id="crlf-in-label"),
]


@pytest.mark.parametrize("change", INJECTIONS)
async def test_header_injection_is_refused(
    tenant: Tenant, db: asyncpg.Connection, mx: SmtpSink, change: dict[str, Any]
) -> None:
    if "from" in change:
        change = {"from": change["from"].format(sender=tenant.sender)}
    await assert_rejected(tenant, db, mx, body(tenant, **change), "invalid_value")


@pytest.mark.parametrize(
    ("change", "code"),
    [
        ({"to": ["not-an-address"]}, "invalid_email"),
        ({"to": ["ann@example.org", "bob@@example.org"]}, "invalid_email"),
        ({"to": ["ann@exa mple.org"]}, "invalid_email"),
        ({"from": "nobody"}, "invalid_email"),
        ({"to": []}, "empty_value"),
        ({"to": None}, "empty_value"),
        ({"subject": None}, "empty_value"),
        ({"subject": "   "}, "empty_value"),
        ({"text": None}, "empty_value"),
        ({"text": "", "html": ""}, "empty_value"),
        ({"to": [f"r{i}@example.org" for i in range(101)]}, "size_exceeded"),
        ({"surprise": True}, "invalid_value"),
        (
            {"attachments": [{"filename": "run.EXE", "content": base64.b64encode(b"MZ").decode()}]},
            "invalid_value",
        ),
        ({"attachments": [{"filename": "a.pdf", "content": "%%%not base64"}]}, "invalid_value"),
        ({"attachments": [{"filename": "a.txt", "content": "eA=="}] * 101}, "size_exceeded"),
    ],
    ids=[
        "bad-rcpt", "one-bad-rcpt", "space-in-rcpt", "bad-from", "no-rcpt", "missing-to",
        "missing-subject", "blank-subject", "empty-body", "blank-bodies", "101-rcpts",
        "unknown-field", "exe-attachment", "bad-base64", "101-attachments",
    ],
)  # fmt: skip
async def test_invalid_request_is_refused(
    tenant: Tenant, db: asyncpg.Connection, mx: SmtpSink, change: dict[str, Any], code: str
) -> None:
    await assert_rejected(tenant, db, mx, body(tenant, **change), code)


async def test_attachment_type_refusal_names_the_extension(
    tenant: Tenant, db: asyncpg.Connection, mx: SmtpSink
) -> None:
    attachment = {"filename": "setup.exe", "content": base64.b64encode(b"MZ").decode()}
    text = await assert_rejected(
        tenant, db, mx, body(tenant, attachments=[attachment]), "invalid_value"
    )
    assert "Not allowed attachement type .exe" in text


async def test_unknown_sender_is_refused(
    tenant: Tenant, other_tenant: Tenant, db: asyncpg.Connection, mx: SmtpSink
) -> None:
    unregistered = f"someone.else@{tenant.domain}"
    text = await assert_rejected(
        tenant, db, mx, body(tenant, **{"from": unregistered}), "invalid_value"
    )
    assert unregistered in text
    # Another tenant's verified sender is not ours to use either.
    await assert_rejected(
        tenant, db, mx, body(tenant, **{"from": other_tenant.sender}), "invalid_value"
    )


async def test_body_that_is_not_json_is_refused(tenant: Tenant, db: asyncpg.Connection) -> None:
    before = await queued_count(db)
    answer = await tenant.client("ingest").post(
        "/v1/messages", content=b"{not json", headers={"content-type": "application/json"}
    )
    assert answer.status_code == 400
    assert envelope(answer)["Code"] == "invalid_value"
    assert await queued_count(db) == before


@pytest.mark.parametrize(
    "auth",
    [
        None,
        ("nobody_at_all", "whatever"),
        ("RIGHT_USER", "wrong-key"),
        ("RIGHT_USER", ""),
    ],
    ids=["no-credentials", "unknown-user", "wrong-key", "empty-key"],
)
async def test_wrong_credentials_are_refused(
    platform: PlatformProcess,
    tenant: Tenant,
    db: asyncpg.Connection,
    auth: tuple[str, str] | None,
) -> None:
    if auth is not None and auth[0] == "RIGHT_USER":
        auth = (tenant.api_user, auth[1])
    before = await queued_count(db)
    async with httpx.AsyncClient(base_url=platform.url, auth=auth) as client:
        answer = await client.post("/v1/messages", json=body(tenant))
        listing = await client.get("/v1/domains")
    assert answer.status_code == listing.status_code == 401
    assert envelope(answer)["Code"] == envelope(listing)["Code"] == "authorization_failed"
    assert answer.headers["www-authenticate"].startswith("Basic")
    assert await queued_count(db) == before


async def test_admin_api_needs_the_admin_token(platform: PlatformProcess) -> None:
    async with httpx.AsyncClient(base_url=platform.url) as client:
        missing = await client.post("/v1/admin/accounts", json={"name": "sneaky"})
        wrong = await client.post(
            "/v1/admin/accounts",
            json={"name": "sneaky"},
            headers={"Authorization": "Bearer not-the-token-at-all"},
        )
    assert missing.status_code == wrong.status_code == 401
    assert envelope(wrong)["Code"] == "authorization_failed"


async def test_unknown_paths_and_methods_answer_in_the_envelope(tenant: Tenant) -> None:
    missing = await tenant.client("ingest").get("/v1/nothing-here")
    assert missing.status_code == 404
    assert envelope(missing)["Code"] == "not_found"
    wrong_method = await tenant.client("ingest").put("/v1/domains")
    assert wrong_method.status_code == 405
    assert envelope(wrong_method)["Code"] == "not_available"
    assert wrong_method.headers["allow"] == "GET, POST"
    trace = await tenant.client("ingest").request("TRACE", "/v1/domains/nothing.example")
    assert trace.status_code == 405
    assert envelope(trace)["Code"] == "not_available"
    assert trace.headers["allow"] == "DELETE, GET, PATCH"


@pytest.mark.parametrize(
    ("path", "size"),
    [("/v1/admin/accounts", 70 * 1024), ("/v1/webhooks", 70 * 1024), ("/v1/messages", 16 << 20)],
)
async def test_oversized_bodies_are_refused_before_authentication(
    platform: PlatformProcess, path: str, size: int
) -> None:
    async with httpx.AsyncClient(base_url=platform.url, timeout=30) as client:
        answer = await client.post(
            path, content=b"x" * size, headers={"content-type": "application/json"}
        )
    assert answer.status_code == 400
    assert answer.json()["Code"] == "size_exceeded"  # not authorization_failed: no auth yet


async def test_an_oversized_chunked_body_is_cut_off(platform: PlatformProcess) -> None:
    async def chunks() -> AsyncIterator[bytes]:
        for _ in range(20):
            yield b"x" * 8192

    async with httpx.AsyncClient(base_url=platform.url, timeout=30) as client:
        # A chunked body has no declared size: it is read only once the caller is known
        # (a stranger gets 401 without a byte read), and cut off at the limit.
        stranger = await client.post(
            "/v1/admin/accounts",
            content=chunks(),
            headers={"content-type": "application/json", "authorization": "Bearer nope"},
        )
        operator = await client.post(
            "/v1/admin/accounts",
            content=chunks(),
            headers={"content-type": "application/json", "authorization": f"Bearer {ADMIN_TOKEN}"},
        )
    assert stranger.status_code == 401
    assert operator.status_code == 400
    assert operator.json()["Code"] == "size_exceeded"
