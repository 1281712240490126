"""The webhook HTTP client against a real HTTP server on loopback."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from postwire_notifier.http_client import SafeClient
from postwire_testkit.http import HttpReceiver


@pytest.fixture
def receiver() -> Iterator[HttpReceiver]:
    server = HttpReceiver().start()
    yield server
    server.stop()


async def test_private_targets_are_refused_before_any_request(receiver: HttpReceiver) -> None:
    client = SafeClient(allow_private=False, timeout=2)
    try:
        for url in (receiver.url(), f"http://localhost:{receiver.port}/hook"):
            answer = await client.request("POST", url, json={"x": 1})
            assert answer.status is None
            assert answer.error is not None
            assert "forbidden target" in answer.error
    finally:
        await client.close()
    assert receiver.requests == []


async def test_request_goes_to_the_checked_address_with_the_original_host(
    receiver: HttpReceiver,
) -> None:
    client = SafeClient(allow_private=True, timeout=2)
    try:
        answer = await client.request(
            "POST", f"http://localhost:{receiver.port}/hook?a=1", json={"x": 1}
        )
    finally:
        await client.close()
    assert answer.ok
    (request,) = receiver.requests
    assert request.path == "/hook?a=1"
    assert request.headers["Host"] == f"localhost:{receiver.port}"
    assert request.json() == {"x": 1}


async def test_redirects_are_not_followed(receiver: HttpReceiver) -> None:
    receiver.post_status = 302
    client = SafeClient(allow_private=True, timeout=2)
    try:
        answer = await client.request("POST", receiver.url(), json={})
    finally:
        await client.close()
    assert answer.status == 302
    assert not answer.ok
    assert len(receiver.requests) == 1


async def test_a_slow_endpoint_fails_at_the_deadline() -> None:
    import asyncio

    async def slow(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await asyncio.sleep(5)
        writer.close()

    server = await asyncio.start_server(slow, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    client = SafeClient(allow_private=True, timeout=0.5)
    try:
        answer = await client.request("POST", f"http://127.0.0.1:{port}/", json={})
    finally:
        await client.close()
        server.close()
    assert answer.status is None
    assert answer.error is not None
    assert "0.5s" in answer.error
    assert answer.latency_ms < 2000
