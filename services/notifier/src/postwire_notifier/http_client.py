"""HTTP requests to user-given URLs, safe against SSRF.

Each new connection resolves the host once and goes to an address that passed the check
(``transport.CheckedBackend``); the URL keeps its host name for the pool, the ``Host``
header and TLS. Redirects are not followed (a 3xx is a failed push), the whole exchange
is bounded by one deadline, and at most ``EXCERPT`` bytes of the answer are read.
"""

from __future__ import annotations

import asyncio
import ipaddress
import ssl
import time
from dataclasses import dataclass
from urllib.parse import urlsplit

import httpx

from postwire_common.errors import InvalidValue
from postwire_common.netguard import ForbiddenTarget, Lookup, system_lookup
from postwire_notifier.transport import CheckedBackend, checked_transport

EXCERPT = 1024
MAX_URL = 2048


@dataclass(frozen=True, slots=True)
class Answer:
    status: int | None  # None: no HTTP answer at all
    latency_ms: int
    excerpt: str = ""
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.status == 200


def check_url(url: str) -> str:
    """Syntax rules for webhook URLs (the address check happens at request time)."""
    if len(url) > MAX_URL:
        raise InvalidValue(f"url is longer than {MAX_URL} characters")
    if any(ord(c) < 33 or ord(c) == 127 for c in url):
        raise InvalidValue("url must not contain spaces or control characters")
    try:
        parts = urlsplit(url)
        host, port = parts.hostname, parts.port
    except ValueError:  # unbalanced brackets, a bad port
        raise InvalidValue("url is not a valid URL (check the host and port)") from None
    if parts.scheme not in ("http", "https") or not host:
        raise InvalidValue("url must be an absolute http:// or https:// URL")
    if port == 0:
        raise InvalidValue("url has an invalid port")
    problem = _host_problem(url)
    if problem:
        raise InvalidValue(f"url has an invalid host name: {problem}")
    return url


MAX_LABEL = 63
MAX_NAME = 253


def _host_problem(url: str) -> str | None:
    """What makes the URL's host unusable as a DNS name (RFC 1035 limits, after IDNA)."""
    try:
        host = httpx.URL(url).raw_host.decode("ascii")  # IDNA-encoded, as it is sent
    except httpx.InvalidURL:
        return (
            "it cannot be encoded as an internationalized domain name (IDNA; labels "
            f"of 1 to {MAX_LABEL} characters once encoded)"
        )
    try:
        ipaddress.ip_address(host)
    except ValueError:
        pass
    else:
        return None
    name = host[:-1] if host.endswith(".") else host  # one final dot: a rooted name
    labels = name.split(".")
    if "" in labels:
        return "it has an empty label (a leading dot or two dots in a row)"
    if any(len(label) > MAX_LABEL for label in labels):
        return f"a label is longer than {MAX_LABEL} characters"
    if len(name) > MAX_NAME:
        return f"it is longer than {MAX_NAME} characters"
    try:
        name.encode("idna")  # what the resolver call does with it
    except UnicodeError:
        return "it cannot be encoded as an internationalized domain name (IDNA)"
    return None


class SafeClient:
    def __init__(
        self,
        *,
        allow_private: bool,
        timeout: float,
        lookup: Lookup = system_lookup,
        ssl_context: ssl.SSLContext | None = None,
    ) -> None:
        self._timeout = timeout
        limits = httpx.Limits(max_connections=512, max_keepalive_connections=128)
        backend = CheckedBackend(allow_private=allow_private, lookup=lookup)
        self._client = httpx.AsyncClient(
            transport=checked_transport(backend, limits, ssl_context),
            follow_redirects=False,
            timeout=httpx.Timeout(timeout),
            headers={"User-Agent": "postwire-webhook/1"},
            trust_env=False,
        )

    async def close(self) -> None:
        await self._client.aclose()

    async def request(
        self,
        method: str,
        url: str,
        *,
        json: object | None = None,
        content: bytes | None = None,
        headers: dict[str, str] | None = None,
    ) -> Answer:
        started = time.perf_counter()

        def elapsed() -> int:
            return int((time.perf_counter() - started) * 1000)

        try:
            async with asyncio.timeout(self._timeout):
                request = self._client.build_request(
                    method, url, json=json, content=content, headers=headers
                )
                response = await self._client.send(request, stream=True)
                try:
                    excerpt = await _read_excerpt(response)
                finally:
                    await response.aclose()
        except ForbiddenTarget as exc:
            return Answer(None, elapsed(), error=f"forbidden target: {exc}")
        except TimeoutError:
            return Answer(None, elapsed(), error=f"no answer within {self._timeout:g}s")
        except httpx.HTTPError as exc:
            return Answer(None, elapsed(), error=f"{type(exc).__name__}: {exc}"[:500])
        return Answer(response.status_code, elapsed(), excerpt)


async def _read_excerpt(response: httpx.Response) -> str:
    chunks: list[bytes] = []
    size = 0
    async for chunk in response.aiter_raw():
        chunks.append(chunk)
        size += len(chunk)
        if size >= EXCERPT:
            break
    return b"".join(chunks)[:EXCERPT].decode("utf-8", "replace")
