"""Reading a JSON body with a size limit, validated into a pydantic model.

FastAPI reads a body whole before any check; routes that take large bodies (messages
with attachments) read it through :func:`read_model` instead, which stops at ``limit``
bytes and maps validation errors to the same envelope codes as FastAPI's.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypeVar

from fastapi import Request
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel, ValidationError

from postwire_common.errors import SizeExceeded

M = TypeVar("M", bound=BaseModel)


async def read_body(request: Request, limit: int) -> bytes:
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise SizeExceeded(f"the request body is larger than {limit // (1024 * 1024)} MB")
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise SizeExceeded(f"the request body is larger than {limit // (1024 * 1024)} MB")
        chunks.append(chunk)
    return b"".join(chunks)


def _request_error(exc: ValidationError) -> RequestValidationError:
    """Same mapping as FastAPI's own body validation (see envelope.py)."""
    return RequestValidationError(
        [{**e, "loc": ("body", *e["loc"])} for e in exc.errors(include_url=False)]
    )


def parse_model(model: type[M], body: bytes) -> M:
    try:
        return model.model_validate_json(body or b"{}")
    except ValidationError as exc:
        raise _request_error(exc) from None


def parse_fields(model: type[M], fields: Mapping[str, Any]) -> M:
    """A multipart/form-data body's fields as ``model``, answered as a JSON body's."""
    try:
        return model.model_validate(fields)
    except ValidationError as exc:
        raise _request_error(exc) from None


def form_schema(
    model: type[BaseModel], files: Mapping[str, dict[str, Any]], *, required: tuple[str, ...] = ()
) -> dict[str, Any]:
    """``model`` as a ``multipart/form-data`` body for the OpenAPI document: every field a
    form field, and ``files`` (name -> schema) file parts; ``required`` of them must come."""
    schema = model.model_json_schema()
    properties: dict[str, Any] = {}
    for name, field in schema["properties"].items():
        options = [o for o in field.get("anyOf", [field]) if o.get("type") != "null"]
        properties[name] = {**options[0], **{k: field[k] for k in ("description",) if k in field}}
    properties.update(files)
    form: dict[str, Any] = {
        "title": f"{schema['title']}Form",
        "type": "object",
        "properties": properties,
        "required": [*schema.get("required", []), *required],
        "additionalProperties": False,
    }
    if "$defs" in schema:
        form["$defs"] = schema["$defs"]  # the document's components take them
    return form
