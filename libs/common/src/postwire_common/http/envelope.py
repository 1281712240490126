"""The response envelope ``{"Code", "Description", "Result"}`` of every answer.

Routes return :func:`ok` (or raise a :class:`~postwire_common.errors.PostwireError`);
:func:`install_error_handlers` turns every error, FastAPI's own included, into the
envelope, so no client ever sees a stack trace or a bare FastAPI error body.
"""

from __future__ import annotations

import json
import logging
from typing import Any, Generic, TypeVar

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import Response
from fastapi.routing import iter_route_contexts
from pydantic import BaseModel, ConfigDict, Field
from pydantic_core import to_json
from starlette.exceptions import HTTPException as StarletteHTTPException

from postwire_common.errors import AuthorizationFailed, PostwireError, QuotaExceeded
from postwire_common.infra import is_infrastructure

log = logging.getLogger("postwire.http")

T = TypeVar("T")


class Envelope(BaseModel, Generic[T]):
    """Every response body."""

    model_config = ConfigDict(populate_by_name=True)

    code: str = Field("ok", alias="Code", description="ok or an error code (API.md).")
    description: str = Field("ok", alias="Description", description="Human-readable text.")
    result: T | None = Field(None, alias="Result", description="The answer, or null.")


def envelope_response(
    result: Any = None,
    *,
    code: str = "ok",
    description: str = "ok",
    status: int = 200,
    headers: dict[str, str] | None = None,
) -> Response:
    body = to_json({"Code": code, "Description": description, "Result": result}, by_alias=True)
    return Response(body, status_code=status, media_type="application/json", headers=headers)


def ok(result: Any = None, *, status: int = 200, description: str = "ok") -> Response:
    return envelope_response(result, status=status, description=description)


def error_response(error: PostwireError) -> Response:
    headers: dict[str, str] | None = None
    if isinstance(error, QuotaExceeded):
        headers = {"Retry-After": str(error.retry_after)}
    elif isinstance(error, AuthorizationFailed):
        headers = {"WWW-Authenticate": 'Basic realm="postwire"'}
    return envelope_response(
        None,
        code=error.code,
        description=error.description,
        status=error.http_status,
        headers=headers,
    )


def _location(loc: tuple[Any, ...]) -> str:
    parts = [str(p) for p in loc if p not in ("body", "query", "path", "header")]
    return ".".join(parts) or "body"


def validation_error_response(exc: RequestValidationError) -> Response:
    errors = exc.errors()
    first = errors[0] if errors else {"type": "value_error", "loc": (), "msg": "invalid"}
    kind = first.get("type", "")
    where = _location(tuple(first.get("loc", ())))
    if kind == "json_invalid":
        code, text = "invalid_value", "the request body is not valid JSON"
    elif kind == "missing":
        code, text = "empty_value", f"{where} is required"
    else:
        code, text = "invalid_value", f"{where}: {first.get('msg', 'invalid value')}"
    return envelope_response(None, code=code, description=text, status=400)


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(PostwireError)
    async def _postwire(_: Request, exc: PostwireError) -> Response:
        return error_response(exc)

    @app.exception_handler(RequestValidationError)
    async def _validation(_: Request, exc: RequestValidationError) -> Response:
        return validation_error_response(exc)

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> Response:
        if exc.status_code == 404:
            return envelope_response(
                None, code="not_found", description="no such resource", status=404
            )
        if exc.status_code == 405:
            # A method the resource does not have: HTTP's 405 with Allow (RFC 9110), and
            # the envelope's not_available. (A declared operation that refuses an action,
            # such as PUT on an event rule, raises NotAvailable: 400, as API.md says.)
            allow = allowed_methods(request) or (exc.headers or {}).get("Allow", "")
            return envelope_response(
                None,
                code="not_available",
                description="this method is not available on this resource",
                status=405,
                headers={"Allow": allow},
            )
        if exc.status_code == 401:
            return envelope_response(
                None,
                code="authorization_failed",
                description=str(exc.detail),
                status=401,
                headers={"WWW-Authenticate": 'Basic realm="postwire"'},
            )
        if exc.status_code == 413:
            return envelope_response(
                None, code="size_exceeded", description=str(exc.detail), status=400
            )
        if exc.status_code < 500:
            return envelope_response(
                None, code="invalid_value", description=str(exc.detail), status=400
            )
        return envelope_response(
            None, code="internal_error", description="internal error", status=500
        )

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> Response:
        if _bad_data(exc):
            # A value the routes' own checks let through and the database refused (text
            # it cannot store, a time out of its range): the caller's input, not our
            # failure. Routes validate what they know of; this is the net behind them.
            log.warning(
                "input refused by the database",
                extra={"method": request.method, "path": request.url.path, "error": repr(exc)},
            )
            return envelope_response(
                None,
                code="invalid_value",
                description="a value in the request is out of range or not storable text",
                status=400,
            )
        if is_infrastructure(exc):
            # PostgreSQL or RabbitMQ is down: nothing was committed, the client may retry.
            log.warning(
                "infrastructure unavailable",
                extra={"method": request.method, "path": request.url.path, "error": repr(exc)},
            )
            return envelope_response(
                None,
                code="internal_error",
                description="temporarily unavailable (database or broker); nothing was "
                "changed; try again shortly",
                status=500,
                headers={"Retry-After": "5"},
            )
        log.error(
            "unhandled error",
            exc_info=exc,
            extra={"method": request.method, "path": request.url.path},
        )
        return envelope_response(
            None,
            code="internal_error",
            description="internal error; nothing was changed",
            status=500,
        )


def _bad_data(exc: BaseException) -> bool:
    import asyncpg

    return isinstance(exc, asyncpg.DataError | UnicodeEncodeError)


def allowed_methods(request: Request) -> str:
    """The methods of every route on the request's path (Starlette's own ``Allow``
    names only those of the first route that matched the path)."""
    path, root = request.scope["path"], request.scope.get("root_path", "")
    path = path[len(root) :] if root and path.startswith(root) else path
    methods: set[str] = set()
    for route in iter_route_contexts(request.app.router.routes):
        pattern = getattr(route, "path_regex", None)
        if route.methods and pattern is not None and pattern.match(path):
            methods |= route.methods
    return ", ".join(sorted(methods))


def parse_json_object(body: bytes) -> dict[str, Any]:
    """For routes that read the body themselves: a JSON object or ``invalid_value``."""
    from postwire_common.errors import InvalidValue

    try:
        value = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        raise InvalidValue("the request body is not valid JSON") from None
    if not isinstance(value, dict):
        raise InvalidValue("the request body must be a JSON object")
    return value
