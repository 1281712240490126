"""Paths and query strings that are UTF-8 text without control characters, or a 400.

Ids, names and filters reach SQL as text; PostgreSQL refuses NUL in text, and nothing
we serve has a control character or a broken UTF-8 sequence in its path. So a request
whose path or query string, once percent-decoded, holds either is answered
``invalid_value`` before routing, and nothing behind it has to guard against them.
"""

from __future__ import annotations

from urllib.parse import unquote_to_bytes

from starlette.types import ASGIApp, Receive, Scope, Send

from postwire_common.errors import InvalidValue
from postwire_common.http.envelope import error_response
from postwire_common.text import has_control


def _clean(raw: bytes, *, plus_is_space: bool = False) -> bool:
    if plus_is_space:
        raw = raw.replace(b"+", b" ")
    try:
        text = unquote_to_bytes(raw).decode("utf-8")
    except UnicodeDecodeError:
        return False
    return not has_control(text)


def problem(scope: Scope) -> str | None:
    """What is wrong with the request's path or query string, if anything."""
    raw_path = scope.get("raw_path") or scope["path"].encode("utf-8", "surrogateescape")
    if not _clean(raw_path):
        return "the path must be UTF-8 text without control characters"
    for pair in scope.get("query_string", b"").split(b"&"):
        name, _, value = pair.partition(b"=")
        if not _clean(name, plus_is_space=True):
            return "query parameter names must be UTF-8 text without control characters"
        if not _clean(value, plus_is_space=True):
            shown = unquote_to_bytes(name).decode("utf-8", "replace")
            return f"{shown}: must be UTF-8 text without control characters"
    return None


class InputHygieneMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            found = problem(scope)
            if found is not None:
                await error_response(InvalidValue(found))(scope, receive, send)
                return
        await self.app(scope, receive, send)
