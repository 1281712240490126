"""The {"Code", "Description", "Result"} envelope and the error -> HTTP mapping."""

from __future__ import annotations

import json

import pytest
from fastapi import APIRouter, FastAPI
from fastapi.exceptions import RequestValidationError
from fastapi.responses import Response
from fastapi.testclient import TestClient
from pydantic import BaseModel
from starlette.exceptions import HTTPException

from postwire_common import errors
from postwire_common.http.envelope import (
    error_response,
    install_error_handlers,
    ok,
    validation_error_response,
)

# API.md's code table, written out by hand so the test does not trust errors.py.
API_TABLE: list[tuple[type[errors.PostwireError], str, int]] = [
    (errors.InvalidEmail, "invalid_email", 400),
    (errors.EmptyValue, "empty_value", 400),
    (errors.InvalidValue, "invalid_value", 400),
    (errors.MissingMacros, "missing_macros", 400),
    (errors.SizeExceeded, "size_exceeded", 400),
    (errors.NotAvailable, "not_available", 400),
    (errors.AuthorizationFailed, "authorization_failed", 401),
    (errors.InvalidPermission, "invalid_permission", 403),
    (errors.AccessDenied, "access_denied", 403),
    (errors.NotFound, "not_found", 404),
    (errors.AlreadyExists, "already_exists", 409),
    (errors.QuotaExceeded, "quota_exceeded", 429),
    (errors.InternalError, "internal_error", 500),
]


def body_of(response: Response) -> dict[str, object]:
    data = json.loads(bytes(response.body))
    assert isinstance(data, dict)
    return data


def test_the_table_covers_every_error_class() -> None:
    assert {cls for cls, _, _ in API_TABLE} == set(errors.ERRORS)


@pytest.mark.parametrize(("cls", "code", "status"), API_TABLE)
def test_error_response_code_and_status(
    cls: type[errors.PostwireError], code: str, status: int
) -> None:
    response = error_response(cls("what went wrong"))
    assert response.status_code == status
    assert response.media_type == "application/json"
    assert body_of(response) == {"Code": code, "Description": "what went wrong", "Result": None}


def test_quota_exceeded_sets_retry_after() -> None:
    response = error_response(errors.QuotaExceeded("slow down", retry_after=30))
    assert response.status_code == 429
    assert response.headers["Retry-After"] == "30"


def test_authorization_failed_sets_www_authenticate_basic() -> None:
    response = error_response(errors.AuthorizationFailed("who are you"))
    assert response.headers["WWW-Authenticate"].startswith("Basic ")


@pytest.mark.parametrize(
    "cls", [cls for cls, _, _ in API_TABLE if cls not in (errors.QuotaExceeded,)]
)
def test_only_quota_exceeded_sets_retry_after(cls: type[errors.PostwireError]) -> None:
    assert "retry-after" not in error_response(cls("x")).headers


@pytest.mark.parametrize(
    ("errors_list", "code"),
    [
        ([{"type": "missing", "loc": ("body", "name"), "msg": "Field required"}], "empty_value"),
        (
            [{"type": "json_invalid", "loc": ("body", 3), "msg": "JSON decode error"}],
            "invalid_value",
        ),
        ([{"type": "int_parsing", "loc": ("query", "limit"), "msg": "bad int"}], "invalid_value"),
        (
            [{"type": "string_too_long", "loc": ("body", "name"), "msg": "too long"}],
            "invalid_value",
        ),
        ([], "invalid_value"),
    ],
)
def test_validation_error_response(errors_list: list[dict[str, object]], code: str) -> None:
    response = validation_error_response(RequestValidationError(errors_list))
    assert response.status_code == 400
    body = body_of(response)
    assert body["Code"] == code
    assert body["Result"] is None
    assert isinstance(body["Description"], str)
    assert body["Description"]


def test_validation_error_for_a_missing_field_names_it() -> None:
    response = validation_error_response(
        RequestValidationError([{"type": "missing", "loc": ("body", "subject"), "msg": "x"}])
    )
    assert "subject" in str(body_of(response)["Description"])


# -- through a small app ---------------------------------------------------------------


class Thing(BaseModel):
    name: str
    count: int = 0


@pytest.fixture(scope="module")
def client() -> TestClient:
    app = FastAPI()
    install_error_handlers(app)

    @app.post("/things")
    async def create(thing: Thing) -> object:
        return ok({"name": thing.name, "count": thing.count}, status=201)

    @app.get("/things/{name}")
    async def show(name: str) -> object:
        raise errors.NotFound(f"no thing {name}")

    @app.delete("/things/{name}")
    async def delete(name: str) -> object:
        raise errors.NotFound(f"no thing {name}")

    included = APIRouter(prefix="/boxes")

    @included.get("/{name}")
    async def show_box(name: str) -> object:
        raise errors.NotFound(f"no box {name}")

    @included.post("/{name}")
    async def fill_box(name: str) -> object:
        raise errors.NotFound(f"no box {name}")

    app.include_router(included)

    @app.get("/busy")
    async def busy() -> object:
        raise errors.QuotaExceeded("sending quota reached", retry_after=12)

    @app.get("/boom")
    async def boom() -> object:
        raise RuntimeError("password=hunter2 at /srv/postwire/secret.py")

    @app.get("/too-big")
    async def too_big() -> object:
        raise HTTPException(413, "body too large")

    return TestClient(app, raise_server_exceptions=False)


def envelope(response: object) -> dict[str, object]:
    data = response.json()  # type: ignore[attr-defined]
    assert set(data) == {"Code", "Description", "Result"}
    return data  # type: ignore[no-any-return]


def test_ok_is_an_envelope_with_the_result(client: TestClient) -> None:
    response = client.post("/things", json={"name": "box", "count": 2})
    assert response.status_code == 201
    assert envelope(response) == {
        "Code": "ok",
        "Description": "ok",
        "Result": {"name": "box", "count": 2},
    }


def test_unknown_path_is_not_found_envelope(client: TestClient) -> None:
    response = client.get("/no/such/path")
    assert response.status_code == 404
    assert envelope(response)["Code"] == "not_found"


def test_wrong_method_is_not_available_envelope(client: TestClient) -> None:
    response = client.delete("/things")
    assert envelope(response)["Code"] == "not_available"


def test_wrong_method_is_http_405_with_allow(client: TestClient) -> None:
    # HTTP: a method the resource does not have is 405 with Allow (RFC 9110 15.5.6).
    response = client.delete("/things")
    assert response.status_code == 405
    assert response.headers["allow"] == "POST"


def test_allow_names_the_methods_of_every_route_on_the_path(client: TestClient) -> None:
    # GET and DELETE /things/{name} are two routes; Starlette's own Allow names one.
    response = client.put("/things/box")
    assert response.status_code == 405
    assert envelope(response)["Code"] == "not_available"
    assert response.headers["allow"] == "DELETE, GET"
    assert client.delete("/boxes/big").headers["allow"] == "GET, POST"  # an included router


def test_route_raising_not_found_gives_its_description(client: TestClient) -> None:
    response = client.get("/things/box")
    assert response.status_code == 404
    assert envelope(response) == {
        "Code": "not_found",
        "Description": "no thing box",
        "Result": None,
    }


def test_route_raising_quota_exceeded_sets_retry_after(client: TestClient) -> None:
    response = client.get("/busy")
    assert response.status_code == 429
    assert response.headers["retry-after"] == "12"
    assert envelope(response)["Code"] == "quota_exceeded"


def test_unexpected_exception_is_internal_error_without_details(client: TestClient) -> None:
    response = client.get("/boom")
    assert response.status_code == 500
    data = envelope(response)
    assert data["Code"] == "internal_error"
    assert data["Result"] is None
    for leak in ("Traceback", "RuntimeError", "hunter2", "secret.py", 'File "'):
        assert leak not in response.text


def test_missing_field_is_empty_value(client: TestClient) -> None:
    response = client.post("/things", json={"count": 1})
    assert response.status_code == 400
    data = envelope(response)
    assert data["Code"] == "empty_value"
    assert "name" in str(data["Description"])


def test_bad_json_is_invalid_value(client: TestClient) -> None:
    response = client.post(
        "/things", content=b'{"name": "box",', headers={"content-type": "application/json"}
    )
    assert response.status_code == 400
    assert envelope(response)["Code"] == "invalid_value"


@pytest.mark.parametrize("payload", [{"name": "box", "count": "many"}, ["box"], {"name": 5}])
def test_wrongly_typed_body_is_invalid_value(client: TestClient, payload: object) -> None:
    response = client.post("/things", json=payload)
    assert response.status_code == 400
    assert envelope(response)["Code"] == "invalid_value"


def test_http_413_becomes_size_exceeded(client: TestClient) -> None:
    response = client.get("/too-big")
    assert response.status_code == 400
    assert envelope(response)["Code"] == "size_exceeded"
