"""An httpx transport whose sockets go only to checked addresses.

The URL keeps its host name, so the connection pool is keyed by it and TLS sends it as
the server name and verifies the certificate against it. Only the socket layer (an
httpcore network backend) resolves the name, checks every address with
``postwire_common.netguard`` and connects to one that passed, so a second DNS answer
cannot redirect it (DNS rebinding). Pinning the IP into the URL instead would key the
pool by IP: a connection opened for ``a.test`` would then serve ``b.test`` at the same
address without its certificate ever being checked.
"""

from __future__ import annotations

import contextlib
import logging
import ssl
from collections.abc import Iterable

import httpcore
import httpx

from postwire_common.netguard import ForbiddenTarget, Lookup, resolve_checked, system_lookup

log = logging.getLogger("postwire.notifier")

SocketOption = (
    tuple[int, int, int] | tuple[int, int, bytes | bytearray] | tuple[int, int, None, int]
)


class CheckedBackend(httpcore.AsyncNetworkBackend):
    def __init__(self, *, allow_private: bool, lookup: Lookup = system_lookup) -> None:
        self._allow_private = allow_private
        self._lookup = lookup
        self._inner = httpcore.AnyIOBackend()

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,  # noqa: ASYNC109 (httpcore's signature)
        local_address: str | None = None,
        socket_options: Iterable[SocketOption] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        try:
            ips = await resolve_checked(
                host, port, allow_private=self._allow_private, lookup=self._lookup
            )
        except ForbiddenTarget as exc:
            log.warning("webhook target refused", extra={"host": host, "reason": exc.detail})
            raise
        *others, last = ips  # every one was checked: try them in the resolver's order
        for ip in others:
            with contextlib.suppress(httpcore.ConnectError, httpcore.ConnectTimeout):
                return await self._inner.connect_tcp(
                    ip, port, timeout, local_address, socket_options
                )
        return await self._inner.connect_tcp(last, port, timeout, local_address, socket_options)

    async def sleep(self, seconds: float) -> None:
        await self._inner.sleep(seconds)


def checked_transport(
    backend: CheckedBackend, limits: httpx.Limits, ssl_context: ssl.SSLContext | None
) -> httpx.AsyncHTTPTransport:
    transport = httpx.AsyncHTTPTransport(limits=limits, trust_env=False)
    # httpx has no argument for the network backend; its transport only wraps this pool.
    transport._pool = httpcore.AsyncConnectionPool(
        ssl_context=ssl_context or httpx.create_ssl_context(trust_env=False),
        max_connections=limits.max_connections,
        max_keepalive_connections=limits.max_keepalive_connections,
        keepalive_expiry=limits.keepalive_expiry,
        network_backend=backend,
    )
    return transport
