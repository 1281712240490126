"""HTTP requests to user-given URLs, safe against SSRF.

The host is resolved once and every address checked (``postwire_common.netguard``);
the request then goes to the checked IP with the original ``Host`` header and TLS server
name, so a second DNS answer cannot redirect it (DNS rebinding). Redirects are not
followed (a 3xx is a failed push), the whole exchange is bounded by one deadline, and
at most ``EXCERPT`` bytes of the answer are read.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from urllib.parse import SplitResult, urlsplit, urlunsplit

import httpx

from postwire_common.errors import InvalidValue
from postwire_common.netguard import ForbiddenTarget, resolve_checked

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
    return url


class SafeClient:
    def __init__(self, *, allow_private: bool, timeout: float) -> None:
        self._allow_private = allow_private
        self._timeout = timeout
        self._client = httpx.AsyncClient(
            follow_redirects=False,
            timeout=httpx.Timeout(timeout),
            limits=httpx.Limits(max_connections=512, max_keepalive_connections=128),
            headers={"User-Agent": "postwire-webhook/1"},
            trust_env=False,
        )

    async def close(self) -> None:
        await self._client.aclose()

    async def request(self, method: str, url: str, *, json: object | None = None) -> Answer:
        started = time.perf_counter()

        def elapsed() -> int:
            return int((time.perf_counter() - started) * 1000)

        parts = urlsplit(url)
        host = parts.hostname or ""
        port = parts.port or (443 if parts.scheme == "https" else 80)
        try:
            async with asyncio.timeout(self._timeout):
                ips = await resolve_checked(host, port, allow_private=self._allow_private)
                pinned = _pin(parts, ips[0])
                headers = {"Host": parts.netloc.rpartition("@")[2]}
                extensions = {"sni_hostname": host} if parts.scheme == "https" else {}
                request = self._client.build_request(
                    method, pinned, json=json, headers=headers, extensions=extensions
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


def _pin(parts: SplitResult, ip: str) -> str:
    literal = f"[{ip}]" if ":" in ip else ip
    netloc = literal if parts.port is None else f"{literal}:{parts.port}"
    userinfo = parts.netloc.rpartition("@")[0]
    if userinfo:
        netloc = f"{userinfo}@{netloc}"
    return urlunsplit((parts.scheme, netloc, parts.path or "/", parts.query, ""))


async def _read_excerpt(response: httpx.Response) -> str:
    chunks: list[bytes] = []
    size = 0
    async for chunk in response.aiter_raw():
        chunks.append(chunk)
        size += len(chunk)
        if size >= EXCERPT:
            break
    return b"".join(chunks)[:EXCERPT].decode("utf-8", "replace")
