"""The OpenAPI document and its Swagger UI, both as the API really behaves.

FastAPI's own document says every operation answers 200 or 422 with its validation
body; postwire answers the envelope, 4xx/5xx errors included, and never 422. The
document is finished here, in one place, from what each route declares:

    every operation        400 (API.md's 400 codes) and 500, each the error envelope;
                           no 422, no HTTPValidationError
    needs a caller         401 authorization_failed, 429 quota_exceeded, and its
                           security scheme (HTTP Basic api_user:api_key, or the admin
                           Bearer token)
    has path parameters    404 not_found
    creates (201)          409 already_exists
    declares responses     those statuses (403, 404, … as the route names them)
    success without a      the envelope (Result: the answer)
    declared schema
    operationId            <tag>_<function name>, e.g. messages_send

Routes that read their body themselves give its schema through ``openapi_extra``; the
``$defs`` of such a schema move to ``#/components/schemas`` and the schema itself with
them, so every ``$ref`` resolves. Swagger UI's assets are served from the installed
``swagger-ui-bundle-v2`` package under ``/docs/assets``: ``/docs`` works offline.
"""

from __future__ import annotations

from collections.abc import Iterator
from http import HTTPStatus
from typing import Any

from fastapi import FastAPI
from fastapi.dependencies.models import Dependant
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.openapi.utils import get_openapi
from fastapi.responses import HTMLResponse
from fastapi.routing import APIRoute, iter_route_contexts
from starlette.staticfiles import StaticFiles
from swagger_ui_bundle import swagger_ui_path  # type: ignore[import-untyped]

from postwire_common.errors import ERRORS
from postwire_common.http.auth import admin_access, current_principal

BASIC = "apiUser"
BEARER = "adminToken"
SECURITY_SCHEMES = {
    BASIC: {
        "type": "http",
        "scheme": "basic",
        "description": "HTTP Basic `api_user:api_key` of one of the account's API users.",
    },
    BEARER: {
        "type": "http",
        "scheme": "bearer",
        "description": "`Authorization: Bearer <POSTWIRE_ADMIN_TOKEN>` (operator API).",
    },
}
ENVELOPE = "Envelope"
DOCS_ASSETS = "/docs/assets"

_RESPONSE_HEADERS: dict[int, dict[str, Any]] = {
    401: {
        "WWW-Authenticate": {
            "description": "The scheme to authenticate with.",
            "schema": {"type": "string"},
        }
    },
    429: {
        "Retry-After": {
            "description": "Seconds to wait before trying again.",
            "schema": {"type": "integer"},
        }
    },
}


def install(app: FastAPI, *, docs_url: str = "/docs") -> None:
    """Replace ``app.openapi`` with the finished document and serve Swagger UI offline.

    Build the app with ``docs_url=None``: this installs the docs page itself."""

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            document = get_openapi(
                title=app.title,
                version=app.version,
                openapi_version=app.openapi_version,
                summary=app.summary,
                description=app.description,
                routes=app.routes,
            )
            app.openapi_schema = finish(document, app)
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
    app.mount(DOCS_ASSETS, StaticFiles(directory=swagger_ui_path), name="docs-assets")

    @app.get(docs_url, include_in_schema=False)
    async def docs() -> HTMLResponse:
        return get_swagger_ui_html(
            openapi_url=app.openapi_url or "/openapi.json",
            title=f"{app.title} API",
            swagger_js_url=f"{DOCS_ASSETS}/swagger-ui-bundle.js",
            swagger_css_url=f"{DOCS_ASSETS}/swagger-ui.css",
            swagger_favicon_url=f"{DOCS_ASSETS}/favicon-32x32.png",
        )


OVERVIEW = """\
Every answer, errors included, is the envelope `{"Code", "Description", "Result"}`:
`Code` is `ok` (or `not_changed`) on success, else an error code; each operation lists
the error codes of each HTTP status it may answer. A method a path does not have
answers 405 `not_available` with `Allow`. Authenticate with HTTP Basic
`api_user:api_key`; the operator API under `/v1/admin` takes
`Authorization: Bearer <POSTWIRE_ADMIN_TOKEN>`.
"""


def finish(document: dict[str, Any], app: FastAPI) -> dict[str, Any]:
    document["info"].setdefault("description", OVERVIEW)
    schemas: dict[str, Any] = document.setdefault("components", {}).setdefault("schemas", {})
    _hoist_defs(document, schemas)
    schemas.update(envelope_schemas())
    operation_ids: set[str] = set()
    for route in _api_routes(app):
        for method in sorted(route.methods):
            operation = document["paths"][route.path_format][method.lower()]
            _describe(operation, route, method)
            operation["operationId"] = _operation_id(route, method, operation_ids)
    for unused in ("HTTPValidationError", "ValidationError"):
        schemas.pop(unused, None)
    if any("security" in op for ops in document["paths"].values() for op in ops.values()):
        document["components"]["securitySchemes"] = SECURITY_SCHEMES
    return document


def envelope_schemas() -> dict[str, Any]:
    """``Envelope`` (success) and one error envelope per HTTP status, its codes listed."""
    schemas: dict[str, Any] = {
        ENVELOPE: {
            "title": ENVELOPE,
            "type": "object",
            "description": "Every answer: a code, a text and the result.",
            "properties": {
                "Code": {"type": "string", "description": "ok, or not_changed"},
                "Description": {"type": "string"},
                "Result": {"description": "The answer (its shape depends on the operation)."},
            },
            "required": ["Code", "Description", "Result"],
        }
    }
    for status, codes in _codes_by_status().items():
        schemas[_error_schema_name(status)] = {
            "title": _error_schema_name(status),
            "type": "object",
            "description": f"The error envelope of HTTP {status}.",
            "properties": {
                "Code": {"type": "string", "enum": codes},
                "Description": {"type": "string", "description": "What went wrong."},
                "Result": {"type": "null"},
            },
            "required": ["Code", "Description", "Result"],
        }
    return schemas


def _codes_by_status() -> dict[int, list[str]]:
    by_status: dict[int, list[str]] = {}
    for error in ERRORS:
        by_status.setdefault(error.http_status, []).append(error.code)
    by_status.setdefault(405, []).append("not_available")
    return dict(sorted(by_status.items()))


def _error_schema_name(status: int) -> str:
    return HTTPStatus(status).phrase.title().replace(" ", "").replace("-", "") + "Envelope"


def _api_routes(app: FastAPI) -> Iterator[Any]:
    """The API routes as FastAPI documents them (those of included routers too)."""
    for route in iter_route_contexts(app.routes):
        if isinstance(route.original_route, APIRoute) and route.include_in_schema:
            yield route


def _callers(dependant: Dependant) -> Iterator[object]:
    for sub in dependant.dependencies:
        if sub.call in (current_principal, admin_access):
            yield sub.call
        yield from _callers(sub)


def _operation_id(route: Any, method: str, taken: set[str]) -> str:
    """``<tag>_<function>`` (``messages_send``), what generated clients name their calls;
    FastAPI's own ids repeat path and method (``send_v1_messages_post``)."""
    if route.operation_id:
        return str(route.operation_id)
    tag = str(route.tags[0]) if route.tags else ""
    name = "_".join(part for part in (tag, route.name.strip("_")) if part).replace("-", "_")
    if name in taken:
        name = f"{name}_{method.lower()}"
    taken.add(name)
    return name


def _describe(operation: dict[str, Any], route: Any, method: str) -> None:
    responses: dict[str, Any] = operation.setdefault("responses", {})
    responses.pop("422", None)
    for answer in responses.values():
        for media in answer.get("content", {}).values():
            if not media.get("schema"):
                media["schema"] = {"$ref": f"#/components/schemas/{ENVELOPE}"}
    callers = set(_callers(route.dependant))
    statuses = {400, 500}
    if callers:
        statuses |= {401, 429}
        operation["security"] = [
            {BASIC if caller is current_principal else BEARER: []} for caller in callers
        ]
    if route.dependant.path_params:
        statuses.add(404)
    if method == "POST" and route.status_code == 201:
        statuses.add(409)
    # A route names the other error statuses it answers in ``responses`` (e.g. 403, 404
    # for POST /v1/messages with a template): they get the error envelope too.
    declared = {int(s) for s in route.responses if str(s).isdigit() and int(s) >= 400}
    for status in declared:
        responses.pop(str(status), None)
    statuses |= declared
    codes = _codes_by_status()
    for status in sorted(statuses):
        responses.setdefault(
            str(status),
            {
                "description": f"{HTTPStatus(status).phrase}: {', '.join(codes[status])}",
                "content": {
                    "application/json": {
                        "schema": {"$ref": f"#/components/schemas/{_error_schema_name(status)}"}
                    }
                },
                **({"headers": _RESPONSE_HEADERS[status]} if status in _RESPONSE_HEADERS else {}),
            },
        )


def _hoist_defs(document: dict[str, Any], schemas: dict[str, Any]) -> None:
    """Move inline request body schemas that carry ``$defs`` into the components."""
    for operations in document.get("paths", {}).values():
        for operation in operations.values():
            content = operation.get("requestBody", {}).get("content", {})
            for media in content.values():
                schema = media.get("schema", {})
                if "$defs" not in schema:
                    continue
                for name, definition in schema.pop("$defs").items():
                    _add(schemas, name, _rewrite_refs(definition))
                schema = _rewrite_refs(schema)
                if "title" in schema:
                    _add(schemas, schema["title"], schema)
                    schema = {"$ref": f"#/components/schemas/{schema['title']}"}
                media["schema"] = schema


def _add(schemas: dict[str, Any], name: str, schema: Any) -> None:
    if name in schemas and schemas[name] != schema:
        raise ValueError(f"two different schemas are named {name} in the OpenAPI document")
    schemas[name] = schema


def _rewrite_refs(value: Any) -> Any:
    if isinstance(value, dict):
        return {
            key: (
                item.replace("#/$defs/", "#/components/schemas/")
                if key == "$ref" and isinstance(item, str)
                else _rewrite_refs(item)
            )
            for key, item in value.items()
        }
    if isinstance(value, list):
        return [_rewrite_refs(item) for item in value]
    return value
