"""Request body limits, applied before anything else reads the body.

The middleware sits outside routing, authentication and JSON parsing, so an
unauthenticated client cannot make any route buffer or parse more than its limit:
``Content-Length`` over the limit is refused at once, and a chunked body is counted as it
arrives and refused at the first byte past it. Every route takes ``DEFAULT_LIMIT``
unless a service raises it for one (method, path), as ingest does for sending mail. A
path may name its parameters as routes do (``/v1/templates/{template_id}``): each
matches one path segment.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from postwire_common.errors import SizeExceeded
from postwire_common.http.envelope import error_response

DEFAULT_LIMIT = 64 * 1024


def _describe(limit: int) -> str:
    if limit >= 1024 * 1024:
        return f"{limit / (1024 * 1024):g} MB"
    return f"{limit // 1024} KB"


def _route_pattern(path: str) -> re.Pattern[str]:
    """``/v1/templates/{template_id}`` as a pattern: a parameter is one path segment."""
    return re.compile("[^/]+".join(re.escape(part) for part in re.split(r"\{[^/{}]*\}", path)))


class BodyLimitMiddleware:
    def __init__(
        self, app: ASGIApp, *, larger: Mapping[tuple[str, str], int], default: int = DEFAULT_LIMIT
    ) -> None:
        self.app = app
        self.larger = {key: limit for key, limit in larger.items() if "{" not in key[1]}
        self.patterns = [
            (method, _route_pattern(path), limit)
            for (method, path), limit in larger.items()
            if "{" in path
        ]
        self.default = default

    def limit(self, method: str, path: str) -> int:
        path = path.rstrip("/")
        exact = self.larger.get((method, path))
        if exact is not None:
            return exact
        for allowed, pattern, limit in self.patterns:
            if allowed == method and pattern.fullmatch(path):
                return limit
        return self.default

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self.limit(scope["method"], scope["path"])
        error = SizeExceeded(f"the request body is larger than {_describe(limit)}")
        for name, value in scope.get("headers", ()):
            if name == b"content-length" and (not value.isdigit() or int(value) > limit):
                await error_response(error)(scope, receive, send)
                return
        received = 0
        too_large = answered = False

        async def counted() -> Message:
            nonlocal received, too_large
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    too_large = True
                    raise error  # whatever reads the body stops here
            return message

        async def answer(message: Message) -> None:
            # However the app answered the interrupted read, the client is told why.
            nonlocal answered
            if not too_large:
                await send(message)
            elif message["type"] == "http.response.start" and not answered:
                answered = True
                await error_response(error)(scope, receive, send)

        try:
            await self.app(scope, counted, answer)
        except SizeExceeded:
            if not too_large:
                raise
            if not answered:
                await error_response(error)(scope, receive, send)
