"""The webhook HTTP client against real HTTP(S) and DNS servers on loopback."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from postwire_notifier.http_client import SafeClient
from postwire_testkit.dns import LoopbackDns
from postwire_testkit.http import HttpReceiver
from postwire_testkit.tls import SelfSigned, self_signed


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


@pytest.fixture
def dns() -> Iterator[LoopbackDns]:
    server = LoopbackDns().start()
    server.a("a.test", "127.0.0.1")
    server.a("b.test", "127.0.0.1")  # another name, same address
    server.a("meta.test", "169.254.169.254")
    yield server
    server.stop()


@pytest.fixture
def cert() -> SelfSigned:
    return self_signed("a.test")  # valid for a.test only


@pytest.fixture
def https(cert: SelfSigned) -> Iterator[HttpReceiver]:
    server = HttpReceiver(tls=cert.server_context(), keep_alive=True).start()
    yield server
    server.stop()


def trusting(dns: LoopbackDns, cert: SelfSigned) -> SafeClient:
    return SafeClient(
        allow_private=True, timeout=2, lookup=dns.lookup, ssl_context=cert.client_context()
    )


async def test_tls_checks_each_host_name_even_over_a_pooled_connection(
    dns: LoopbackDns, cert: SelfSigned, https: HttpReceiver
) -> None:
    client = trusting(dns, cert)
    try:
        first = await client.request("POST", f"https://a.test:{https.port}/a", json={})
        other = await client.request("POST", f"https://b.test:{https.port}/b", json={})
        again = await client.request("POST", f"https://a.test:{https.port}/a", json={})
    finally:
        await client.close()
    assert first.ok
    assert again.ok
    assert other.status is None
    assert other.error is not None
    assert "CERTIFICATE_VERIFY_FAILED" in other.error
    posts = https.posts()
    assert [r.path for r in posts] == ["/a", "/a"]
    assert posts[0].peer_port == posts[1].peer_port  # a.test's connection was pooled
    assert https.posts()[0].headers["Host"] == f"a.test:{https.port}"


async def test_tls_refuses_a_host_name_the_certificate_does_not_cover(
    dns: LoopbackDns, cert: SelfSigned, https: HttpReceiver
) -> None:
    client = trusting(dns, cert)
    try:
        answer = await client.request("POST", f"https://b.test:{https.port}/b", json={})
    finally:
        await client.close()
    assert answer.error is not None
    assert "CERTIFICATE_VERIFY_FAILED" in answer.error
    assert https.posts() == []


async def test_refusal_does_not_tell_where_a_name_points(dns: LoopbackDns) -> None:
    client = SafeClient(allow_private=False, timeout=2, lookup=dns.lookup)
    try:
        answers = [
            await client.request("POST", f"http://{host}/hook", json={})
            for host in ("meta.test", "a.test", "missing.test")
        ]
    finally:
        await client.close()
    assert [a.error for a in answers] == [
        f"forbidden target: {host} does not resolve to a public address"
        for host in ("meta.test", "a.test", "missing.test")
    ]


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
