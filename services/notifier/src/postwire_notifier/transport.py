"""A resolver for aiohttp that hands out only checked addresses.

The URL keeps its host name, so aiohttp keys its connection pool by it, sends it as the
TLS server name and verifies the certificate against it. Only name resolution is ours:
each new connection resolves the name, checks every address with
``postwire_common.netguard`` and connects to one that passed, so a second DNS answer
cannot redirect it (DNS rebinding). Pinning the IP into the URL instead would key the
pool by IP: a connection opened for ``a.test`` would then serve ``b.test`` at the same
address without its certificate ever being checked.

aiohttp does not ask the resolver about IP literals; ``SafeClient`` checks those itself.
"""

from __future__ import annotations

import logging
import socket

from aiohttp.abc import AbstractResolver, ResolveResult

from postwire_common.netguard import ForbiddenTarget, Lookup, resolve_checked, system_lookup

log = logging.getLogger("postwire.notifier")


class CheckedResolver(AbstractResolver):
    def __init__(self, *, allow_private: bool, lookup: Lookup = system_lookup) -> None:
        self._allow_private = allow_private
        self._lookup = lookup

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        try:
            ips = await resolve_checked(
                host, port, allow_private=self._allow_private, lookup=self._lookup
            )
        except ForbiddenTarget as exc:
            log.warning("webhook target refused", extra={"host": host, "reason": exc.detail})
            raise
        # Every one was checked: aiohttp tries them in the resolver's order.
        return [_result(host, ip, port) for ip in ips]

    async def close(self) -> None:
        pass


def _result(host: str, ip: str, port: int) -> ResolveResult:
    family = socket.AF_INET6 if ":" in ip else socket.AF_INET
    return ResolveResult(
        hostname=host, host=ip, port=port, family=family, proto=0, flags=socket.AI_NUMERICHOST
    )
