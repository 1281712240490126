"""Which body limit a request gets: its (method, path) raised exactly or through a path
with parameters (one segment each), else the default."""

from __future__ import annotations

import pytest
from starlette.types import Receive, Scope, Send

from postwire_common.http.limits import DEFAULT_LIMIT, BodyLimitMiddleware


async def app(scope: Scope, receive: Receive, send: Send) -> None:
    raise AssertionError("not called")


LIMITS = BodyLimitMiddleware(
    app,
    larger={
        ("POST", "/v1/messages"): 100,
        ("PUT", "/v1/templates/{template_id}"): 200,
        ("POST", "/v1/a/{x}/b/{y}"): 300,
    },
)


@pytest.mark.parametrize(
    ("method", "path", "limit"),
    [
        ("POST", "/v1/messages", 100),
        ("POST", "/v1/messages/", 100),
        ("GET", "/v1/messages", DEFAULT_LIMIT),
        ("PUT", "/v1/templates/01ABC", 200),
        ("PUT", "/v1/templates/01ABC/", 200),
        ("PUT", "/v1/templates/{template_id}", 200),
        ("PUT", "/v1/templates", DEFAULT_LIMIT),
        ("PUT", "/v1/templates/a/b", DEFAULT_LIMIT),  # a parameter is one segment
        ("POST", "/v1/templates/01ABC", DEFAULT_LIMIT),
        ("PUT", "/v1/templatesX/01ABC", DEFAULT_LIMIT),
        ("POST", "/v1/a/1/b/2", 300),
        ("POST", "/v1/a/1/b/2/c", DEFAULT_LIMIT),
        ("POST", "/v1/a/1/c/2", DEFAULT_LIMIT),
    ],
)
def test_the_limit_of_a_request(method: str, path: str, limit: int) -> None:
    assert LIMITS.limit(method, path) == limit
