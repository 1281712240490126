"""The route class of every API router: the caller first, then the request's shape.

FastAPI parses a JSON body before it solves dependencies, so an unauthenticated caller
would learn from a 400 how its body was judged. An :class:`ApiRoute` that needs a caller
checks the caller first and reads the body only after that. It then refuses query
parameters the route does not take (a misspelt filter must not silently return
everything) and a single-valued one given twice (``?name=a&name=b`` would be read as
whichever the framework takes).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Coroutine, Iterator, Sequence
from types import UnionType
from typing import Any, Union, get_args, get_origin

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


def _query_names(dependant: Dependant) -> Iterator[tuple[str, bool]]:
    """Each query parameter's name, and whether it takes several values."""
    for param in dependant.query_params:
        yield param.alias, _many(param.field_info.annotation)
    for sub in dependant.dependencies:
        yield from _query_names(sub)


def _many(annotation: Any) -> bool:
    origin = get_origin(annotation)
    if origin in (Union, UnionType):
        return any(_many(arg) for arg in get_args(annotation))
    return isinstance(origin, type) and issubclass(origin, Sequence) and origin is not str


class ApiRoute(APIRoute):
    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()
        checks = list(dict.fromkeys(_checks(self.dependant)))
        names = dict(_query_names(self.dependant))

        async def checked(request: Request) -> Response:
            for check in checks:
                await check(request)
            seen: set[str] = set()
            for name, _ in request.query_params.multi_items():
                if name not in names:
                    accepted = ", ".join(sorted(names)) or "none"
                    raise InvalidValue(f"{name}: unknown query parameter (accepted: {accepted})")
                if name in seen and not names[name]:
                    raise InvalidValue(f"{name}: given more than once")
                seen.add(name)
            return await handler(request)

        return checked
