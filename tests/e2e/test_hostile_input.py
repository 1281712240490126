"""Hostile input at the HTTP edge: every answer is an envelope below 500, no traceback is
logged, and nothing changes. One regression test per finding of the hardening review,
then a property-based fuzz of headers, path segments, query parameters and JSON strings.
"""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

import asyncpg
import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from postwire_testkit.api import Tenant, envelope
from postwire_testkit.platform import PlatformProcess


def log_size(platform: PlatformProcess) -> int:
    return platform.log_path.stat().st_size


def new_log(platform: PlatformProcess, since: int) -> str:
    with platform.log_path.open("rb") as log:
        log.seek(since)
        return log.read().decode("utf-8", "replace")


def assert_no_traceback(platform: PlatformProcess, since: int) -> None:
    logged = new_log(platform, since)
    assert "Traceback" not in logged
    assert "unhandled error" not in logged


# -- credentials ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "authorization"),
    [
        ("/v1/domains", b"Basic \xe9"),
        ("/v1/domains", b"Basic dXgAeTprZXk="),  # "ux\0y:key": NUL in the user name
        ("/v1/domains", b"Basic \xff\xfe"),
        ("/v1/admin/accounts", b"Bearer \xe9"),
        ("/v1/admin/accounts", b"Bearer \x80\xa0"),
    ],
    ids=["basic-latin1", "basic-nul-user", "basic-bytes", "bearer-latin1", "bearer-high-bytes"],
)
async def test_malformed_credentials_are_refused_as_credentials(
    platform: PlatformProcess, path: str, authorization: bytes
) -> None:
    mark = log_size(platform)
    async with httpx.AsyncClient(base_url=platform.url) as client:
        method = "POST" if "admin" in path else "GET"
        answer = await client.request(
            method, path, headers={"Authorization": authorization}, json={"name": "x"}
        )
    assert answer.status_code == 401, answer.text
    assert envelope(answer)["Code"] == "authorization_failed"
    assert_no_traceback(platform, mark)


async def test_the_caller_is_checked_before_the_body_is_read(platform: PlatformProcess) -> None:
    async with httpx.AsyncClient(base_url=platform.url) as client:
        admin = await client.post(
            "/v1/admin/accounts", content=b"not json", headers={"content-type": "application/json"}
        )
        user = await client.post(
            "/v1/domains", content=b"not json", headers={"content-type": "application/json"}
        )
    assert admin.status_code == user.status_code == 401
    assert envelope(admin)["Code"] == envelope(user)["Code"] == "authorization_failed"


# -- paths and query strings ------------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/v1/messages/E%00"),
        ("GET", "/v1/messages?rcpt=a%00"),
        ("GET", "/v1/messages?rcpt=a%C0%80"),  # over-long UTF-8 for NUL
        ("GET", "/v1/messages?rcpt=%ff"),
        ("DELETE", "/v1/api-users/ab%00cdef"),
        ("DELETE", "/v1/webhooks/W%00"),
        ("GET", "/v1/domains/a%0d%0ab"),
        ("DELETE", "/v1/senders/%ED%A0%80%40x.org"),  # a UTF-8-encoded surrogate
    ],
)
async def test_control_characters_and_broken_utf8_in_urls_are_refused(
    tenant: Tenant, platform: PlatformProcess, method: str, path: str
) -> None:
    mark = log_size(platform)
    answer = await tenant.client("ingest").request(method, path)
    assert answer.status_code == 400, answer.text
    assert envelope(answer)["Code"] == "invalid_value"
    assert_no_traceback(platform, mark)


@pytest.mark.parametrize(
    "query",
    [
        {"since": "0001-01-01T00:00:00+14:00"},
        {"until": "9999-12-31T23:59:59-14:00"},
        {"since": "1969-12-31T23:59:59Z"},
    ],
)
async def test_times_out_of_range_are_refused(
    tenant: Tenant, platform: PlatformProcess, query: dict[str, str]
) -> None:
    mark = log_size(platform)
    answer = await tenant.client("events").get("/v1/messages", params=query)
    assert answer.status_code == 400, answer.text
    assert envelope(answer)["Code"] == "invalid_value"
    assert_no_traceback(platform, mark)


async def test_a_cursor_out_of_range_is_refused(tenant: Tenant) -> None:
    import base64

    forged = base64.urlsafe_b64encode(b"0001-01-01T00:00:00+14:00|E1").decode().rstrip("=")
    answer = await tenant.client("events").get("/v1/messages", params={"cursor": forged})
    assert answer.status_code == 400
    assert envelope(answer)["Code"] == "invalid_value"


async def test_unknown_query_parameters_are_named(tenant: Tenant) -> None:
    unknown = await tenant.client("events").get("/v1/messages", params={"rcpt_to": "a@b.org"})
    assert unknown.status_code == 400
    assert envelope(unknown)["Code"] == "invalid_value"
    assert "rcpt_to" in envelope(unknown)["Description"]
    bad_method = await tenant.client("events").get("/v1/messages", params={"method": "fax"})
    assert bad_method.status_code == 400
    assert envelope(bad_method)["Code"] == "invalid_value"


async def test_recipients_are_searched_whatever_their_case(tenant: Tenant) -> None:
    sent = await tenant.send(["MiXed.x@Example.org"])
    assert sent.status_code == 202, sent.text
    env_id = sent.json()["Result"]["messages"][0]["env_id"]
    deadline = time.monotonic() + 20
    found: list[str] = []
    while time.monotonic() < deadline:
        for query in ("mixed.x@example.org", "MIXED.X@EXAMPLE.ORG", "MiXed.x@Example.org"):
            answer = await tenant.client("events").get("/v1/messages", params={"rcpt": query})
            found = [m["env_id"] for m in envelope(answer)["Result"]["messages"]]
            if env_id not in found:
                break
        else:
            break
        await asyncio.sleep(0.2)
    assert env_id in found
    # The stored address keeps the case it was given.
    answer = await tenant.client("events").get(f"/v1/messages/{env_id}")
    assert envelope(answer)["Result"]["rcpt"].split("@")[0] == "MiXed.x"


# -- JSON strings -----------------------------------------------------------------------


@pytest.mark.parametrize(
    "raw",
    [
        b'{"address": "ann@DOMAIN", "alias": "\\ud800"}',
        b'{"address": "ann@DOMAIN", "alias": "a\\u0000b"}',
        b'{"address": "ann@DOMAIN", "alias": "\\udfff\\ud800"}',
    ],
    ids=["lone-high-surrogate", "nul", "reversed-pair"],
)
async def test_unstorable_text_in_json_is_refused(
    tenant: Tenant, platform: PlatformProcess, db: asyncpg.Connection, raw: bytes
) -> None:
    mark = log_size(platform)
    before = await db.fetchval("SELECT count(*) FROM ingest.senders")
    answer = await tenant.client("ingest").post(
        "/v1/senders",
        content=raw.replace(b"DOMAIN", tenant.domain.encode()),
        headers={"content-type": "application/json"},
    )
    assert answer.status_code == 400, answer.text
    assert envelope(answer)["Code"] == "invalid_value"
    assert await db.fetchval("SELECT count(*) FROM ingest.senders") == before
    assert_no_traceback(platform, mark)


async def test_nul_in_a_message_is_refused(tenant: Tenant, platform: PlatformProcess) -> None:
    mark = log_size(platform)
    for field in ("subject", "text", "label"):
        answer = await tenant.send(["nul.fuzz@example.org"], **{field: "a\x00b"})
        assert answer.status_code == 400, (field, answer.text)
        assert envelope(answer)["Code"] == "invalid_value"
    assert_no_traceback(platform, mark)


# -- fuzz -------------------------------------------------------------------------------

# Text of every kind: NUL and other controls, lone surrogates, non-BMP characters.
ANY_TEXT = st.text(st.characters(codec=None, exclude_categories=()), max_size=40)
# Bytes for headers and URLs, including over-long and truncated UTF-8 sequences.
ANY_BYTES = st.one_of(
    st.binary(max_size=40),
    st.sampled_from([b"\xc0\x80", b"\xe0\x80\x80", b"\xed\xa0\x80", b"\xf4\x90\x80\x80", b"\xc3"]),
)
HEADERS = ["authorization", "idempotency-key", "content-type", "x-anything", "accept"]
PATHS = [
    ("GET", "/v1/messages/{}"),
    ("GET", "/v1/domains/{}"),
    ("DELETE", "/v1/senders/{}"),
    ("DELETE", "/v1/api-users/{}"),
    ("DELETE", "/v1/webhooks/{}"),
    ("POST", "/v1/webhooks/{}/test"),
]
BODIES: list[tuple[str, dict[str, Any], str]] = [
    ("/v1/domains", {"name": None}, "name"),
    ("/v1/senders", {"address": "x@example.org", "alias": None}, "alias"),
    ("/v1/api-users", {"name": None, "type": "trigger"}, "name"),
    ("/v1/webhooks", {"url": None, "events": ["delivered"]}, "url"),
    ("/v1/messages", {"from": "", "to": ["json.fuzz@example.org"], "subject": None, "text": "x"},
     "subject"),
    ("/v1/messages", {"from": "", "to": [None], "subject": "s", "text": "x"}, "to"),
    ("/v1/messages", {"from": "", "to": ["json.fuzz@example.org"], "subject": "s", "text": "x",
                      "headers": {"X-Fuzz": None}}, "header"),
]  # fmt: skip


def _fill(template: Any, value: str) -> Any:
    if template is None:
        return value
    if isinstance(template, dict):
        return {k: _fill(v, value) for k, v in template.items()}
    if isinstance(template, list):
        return [_fill(v, value) for v in template]
    return template


def _json_bytes(value: Any) -> bytes:
    # ensure_ascii escapes lone surrogates as \udxxx instead of failing to encode them.
    return json.dumps(value, ensure_ascii=True).encode()


@pytest.fixture
def fuzz_client(platform: PlatformProcess, tenant: Tenant) -> Any:
    with httpx.Client(
        base_url=platform.url, auth=httpx.BasicAuth(tenant.api_user, tenant.api_key), timeout=30
    ) as client:
        yield client


FUZZ = settings(
    max_examples=120,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


def _check(answer: httpx.Response) -> None:
    assert answer.status_code < 500, (answer.status_code, answer.text)
    if answer.headers.get("content-type", "").startswith("application/json"):
        envelope(answer)


@FUZZ
@given(name=st.sampled_from(HEADERS), value=ANY_BYTES)
def test_fuzz_headers(
    fuzz_client: httpx.Client, platform: PlatformProcess, name: str, value: bytes
) -> None:
    mark = log_size(platform)
    value = value.replace(b"\r", b"").replace(b"\n", b"").strip()  # h11 refuses these itself
    try:
        answer = fuzz_client.get("/v1/domains", headers={name: value})
    except httpx.LocalProtocolError:
        return  # the client will not send it (NUL): nothing reached the server
    _check(answer)
    assert_no_traceback(platform, mark)


@FUZZ
@given(route=st.sampled_from(PATHS), segment=st.one_of(ANY_TEXT, ANY_BYTES))
def test_fuzz_path_segments(
    fuzz_client: httpx.Client,
    platform: PlatformProcess,
    route: tuple[str, str],
    segment: str | bytes,
) -> None:
    from urllib.parse import quote

    mark = log_size(platform)
    raw = segment if isinstance(segment, bytes) else segment.encode("utf-8", "surrogatepass")
    method, template = route
    answer = fuzz_client.request(method, template.format(quote(raw, safe="") or "x"))
    _check(answer)
    assert_no_traceback(platform, mark)


@FUZZ
@given(
    name=st.sampled_from(["rcpt", "from", "subject", "label", "status", "since", "cursor", "x"]),
    value=st.one_of(ANY_TEXT, ANY_BYTES),
)
def test_fuzz_query_parameters(
    fuzz_client: httpx.Client, platform: PlatformProcess, name: str, value: str | bytes
) -> None:
    from urllib.parse import quote

    mark = log_size(platform)
    raw = value if isinstance(value, bytes) else value.encode("utf-8", "surrogatepass")
    answer = fuzz_client.get(f"/v1/messages?{name}={quote(raw, safe='')}")
    _check(answer)
    assert_no_traceback(platform, mark)


@FUZZ
@given(target=st.sampled_from(BODIES), value=ANY_TEXT)
def test_fuzz_json_strings(
    fuzz_client: httpx.Client,
    platform: PlatformProcess,
    tenant: Tenant,
    target: tuple[str, dict[str, Any], str],
    value: str,
) -> None:
    mark = log_size(platform)
    path, template, _ = target
    body = _fill(template, value)
    if "from" in body:
        body["from"] = tenant.sender
    answer = fuzz_client.post(
        path, content=_json_bytes(body), headers={"content-type": "application/json"}
    )
    _check(answer)
    assert_no_traceback(platform, mark)


# -- the rest of its kind ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "path", "content"),
    [
        ("POST", "/v1/domains", b"[" * 30000 + b"]" * 30000),
        ("POST", "/v1/domains", b'{"name":' * 7000 + b"1" + b"}" * 7000),
        ("POST", "/v1/messages", b"[" * 200000 + b"]" * 200000),
        ("POST", "/v1/domains", b'{"name": 1e999999}'),
        ("POST", "/v1/domains", b'{"name": "a", "name": "b"}'),
        ("POST", "/v1/domains", b"\xef\xbb\xbf{}"),
        ("POST", "/v1/domains", b'{"name": "\xff"}'),
        ("POST", "/v1/webhooks", b'{"url": "http://[::1", "events": ["delivered"]}'),
        ("POST", "/v1/webhooks", b'{"url": "http://a:99999/", "events": ["delivered"]}'),
        ("POST", "/v1/webhooks", b'{"url": "http://a:-1/", "events": ["delivered"]}'),
    ],
    ids=[
        "deep-array", "deep-object", "deep-array-large-route", "huge-exponent",
        "duplicate-key", "bom", "invalid-utf8", "bad-ipv6-url", "port-out-of-range",
        "negative-port",
    ],
)  # fmt: skip
async def test_malformed_json_and_urls_are_refused(
    tenant: Tenant, platform: PlatformProcess, method: str, path: str, content: bytes
) -> None:
    mark = log_size(platform)
    service = "notifier" if "webhooks" in path else "ingest"
    answer = await tenant.client(service).request(
        method, path, content=content, headers={"content-type": "application/json"}
    )
    assert 400 <= answer.status_code < 500, answer.text
    assert_no_traceback(platform, mark)


@pytest.mark.parametrize(
    ("path", "params"),
    [
        ("/v1/messages", {"limit": "0"}),
        ("/v1/messages", {"limit": "99999999999999999999"}),
        ("/v1/messages", {"limit": "abc"}),
        ("/v1/messages", {"cursor": "!!!"}),
        ("/v1/messages", {"cursor": "x" * 5000}),
        ("/v1/messages", {"since": "2026-13-45"}),
        ("/v1/messages", {"status": "x" * 5000}),
        ("/v1/domains/" + "a" * 5000, {}),
        ("/v1/messages/" + "E" * 5000, {}),
    ],
)
async def test_odd_queries_are_answered_below_500(
    tenant: Tenant, platform: PlatformProcess, path: str, params: dict[str, str]
) -> None:
    mark = log_size(platform)
    answer = await tenant.client("ingest").get(path, params=params)
    assert answer.status_code < 500, answer.text
    envelope(answer)
    assert_no_traceback(platform, mark)


async def test_an_idempotency_key_is_bounded(tenant: Tenant, platform: PlatformProcess) -> None:
    mark = log_size(platform)
    answer = await tenant.send(["idem.fuzz@example.org"], idempotency_key="k" * 5000)
    assert answer.status_code == 400, answer.text
    assert envelope(answer)["Code"] == "invalid_value"
    body = {"from": tenant.sender, "to": ["idem.fuzz@example.org"], "subject": "s", "text": "t"}
    for raw in ("ключ-é".encode(), b"\xff\xfe-key"):
        odd = await tenant.client("ingest").post(
            "/v1/messages", json=body, headers={"Idempotency-Key": raw}
        )
        assert odd.status_code in (202, 400), odd.text
    assert_no_traceback(platform, mark)
