"""The route class of every API router: the caller first, then the request's shape.

FastAPI parses a JSON body before it solves dependencies, so an unauthenticated caller
would learn from a 400 how its body was judged. An :class:`ApiRoute` that needs a caller
checks the caller first and reads the body only after that. It then refuses query
parameters the route does not take: a misspelt filter must not silently return
everything.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Coroutine, Iterator
from typing import Any

from fastapi import Request, Response
from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute

from postwire_common.errors import InvalidValue
from postwire_common.http.auth import admin_access, current_principal

_CHECKS = (current_principal, admin_access)


def _checks(dependant: Dependant) -> Iterator[Callable[[Request], Awaitable[Any]]]:
    for sub in dependant.dependencies:
        if sub.call in _CHECKS:
            yield sub.call
        yield from _checks(sub)


def _query_names(dependant: Dependant) -> Iterator[str]:
    for param in dependant.query_params:
        yield param.alias
    for sub in dependant.dependencies:
        yield from _query_names(sub)


class ApiRoute(APIRoute):
    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()
        checks = list(dict.fromkeys(_checks(self.dependant)))
        known = frozenset(_query_names(self.dependant))

        async def checked(request: Request) -> Response:
            for check in checks:
                await check(request)
            for name in request.query_params:
                if name not in known:
                    accepted = ", ".join(sorted(known)) or "none"
                    raise InvalidValue(f"{name}: unknown query parameter (accepted: {accepted})")
            return await handler(request)

        return checked
