"""The MTA-STS material of a recipient domain, as published: its ``_mta-sts`` TXT
records and its policy body over HTTPS (RFC 8461 3.1, 3.3). Parsing and caching are
``mta_sts.py``'s.

The policy host is named by the recipient domain, so it is held to the rule MX hosts
are: its addresses (resolved through ``POSTWIRE_DNS_NAMESERVERS``) must all be public
unless ``POSTWIRE_ALLOW_PRIVATE_TARGETS``, and the request goes to an address that was
checked, with the host name as TLS server name and certificate identity (system trust
store plus ``POSTWIRE_DELIVERY_CA_FILE``). No redirects, no proxy from the environment,
``FETCH_TIMEOUT`` for the whole fetch, at most 64 KB, media type text/plain.
"""

from __future__ import annotations

import asyncio

import dns.asyncresolver
import dns.exception
import dns.rdatatype
import httpx

from postwire_common.netguard import ForbiddenTarget, resolve_checked
from postwire_delivery.routing import addresses
from postwire_delivery.smtp import verifying_context

WELL_KNOWN = "/.well-known/mta-sts.txt"
MAX_POLICY_BYTES = 64 * 1024  # RFC 8461 3.3
FETCH_TIMEOUT = 10.0


class FetchFailed(Exception):
    """The policy could not be fetched: address refused, connection, TLS, HTTP, size."""


class PolicyFetcher:
    def __init__(
        self,
        resolver: dns.asyncresolver.Resolver,
        *,
        allow_private: bool,
        ca_file: str = "",
        port: int = 443,
        timeout: float = FETCH_TIMEOUT,
    ) -> None:
        self._resolver = resolver
        self._allow_private = allow_private
        self._tls = verifying_context(ca_file)  # read now: a bad file fails at start
        self._port = port
        self._timeout = timeout

    async def txt(self, domain: str) -> list[str]:
        """The TXT records at ``_mta-sts.<domain>``, each one string; none when there
        are none or DNS fails."""
        try:
            answer = await self._resolver.resolve(f"_mta-sts.{domain}", dns.rdatatype.TXT)
        except dns.exception.DNSException:
            return []
        return [b"".join(r.strings).decode("utf-8", "replace") for r in answer]

    async def policy_text(self, domain: str) -> str:
        """The body of ``https://mta-sts.<domain>/.well-known/mta-sts.txt``, or
        :class:`FetchFailed` saying why not."""
        try:
            host = "mta-sts." + domain.encode("idna").decode("ascii")
        except UnicodeError:
            raise FetchFailed(f"{domain} is not a valid domain name") from None

        async def lookup(name: str, port: int) -> list[str]:
            return await addresses(self._resolver, name)

        try:
            ips = await resolve_checked(
                host, self._port, allow_private=self._allow_private, lookup=lookup
            )
        except ForbiddenTarget as exc:
            raise FetchFailed(exc.detail) from None
        failures: list[str] = []
        for ip in ips:
            try:
                async with asyncio.timeout(self._timeout):
                    return await self._get(host, ip)
            except (httpx.HTTPError, TimeoutError) as exc:
                failures.append(f"{ip}: {type(exc).__name__}: {exc}")
        raise FetchFailed(f"https://{host}{WELL_KNOWN}: " + "; ".join(failures[:3]))

    async def _get(self, host: str, ip: str) -> str:
        """The body at ``https://host/.well-known/mta-sts.txt``, asked of ``ip``. A client
        per fetch: a pooled connection would serve another host at the same address
        without its certificate being checked."""
        url = httpx.URL(scheme="https", host=ip, port=self._port, path=WELL_KNOWN)
        authority = host if self._port == 443 else f"{host}:{self._port}"
        async with (
            httpx.AsyncClient(verify=self._tls, trust_env=False, follow_redirects=False) as client,
            client.stream(
                "GET",
                url,
                headers={"Host": authority, "User-Agent": "postwire-mta-sts/1"},
                extensions={"sni_hostname": host},
                timeout=self._timeout,
            ) as response,
        ):
            if response.status_code != 200:
                raise FetchFailed(f"{host} answered {response.status_code} for {WELL_KNOWN}")
            media_type = response.headers.get("content-type", "").partition(";")[0]
            if media_type.strip().lower() != "text/plain":
                raise FetchFailed(f"the policy is served as {media_type[:40]!r}, not text/plain")
            body = bytearray()
            async for chunk in response.aiter_bytes():
                body += chunk
                if len(body) > MAX_POLICY_BYTES:
                    raise FetchFailed("the policy is larger than 64 KB")
        try:
            return body.decode("utf-8")
        except UnicodeDecodeError:
            raise FetchFailed("the policy is not UTF-8") from None
