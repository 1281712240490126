"""Reading a JSON body with a size limit, validated into a pydantic model.

FastAPI reads a body whole before any check; routes that take large bodies (messages
with attachments) read it through :func:`read_model` instead, which stops at ``limit``
bytes and maps validation errors to the same envelope codes as FastAPI's.
"""

from __future__ import annotations

from typing import TypeVar

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


def parse_model(model: type[M], body: bytes) -> M:
    try:
        return model.model_validate_json(body or b"{}")
    except ValidationError as exc:
        # Same mapping as FastAPI's own body validation (see envelope.py).
        raise RequestValidationError(
            [{**e, "loc": ("body", *e["loc"])} for e in exc.errors(include_url=False)]
        ) from None
