"""The OpenAPI document says what the API answers (envelopes, codes), and /docs is offline."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi import APIRouter, FastAPI, Request, Response
from fastapi.testclient import TestClient
from openapi_spec_validator import validate
from pydantic import BaseModel

from postwire_common.http import openapi
from postwire_common.http.auth import AdminAccess, CurrentPrincipal
from postwire_common.http.envelope import install_error_handlers, ok


class Part(BaseModel):
    name: str


class Parcel(BaseModel):
    parts: list[Part]


class CreateThing(BaseModel):
    name: str


def make_app() -> FastAPI:
    app = FastAPI(title="t", version="1", docs_url=None)
    install_error_handlers(app)
    openapi.install(app)
    things = APIRouter(prefix="/v1/things", tags=["things"])

    @things.post("", status_code=201)
    async def create(body: CreateThing, principal: CurrentPrincipal) -> Response:
        return ok(body.name, status=201)

    @things.get("/{name}")
    async def show(name: str, principal: CurrentPrincipal) -> Response:
        return ok(name)

    @things.post(
        "/{name}/parcels",
        status_code=202,
        openapi_extra={
            "requestBody": {
                "required": True,
                "content": {"application/json": {"schema": Parcel.model_json_schema()}},
            }
        },
    )
    async def send(name: str, request: Request, principal: CurrentPrincipal) -> Response:
        return ok(status=202)

    admin = APIRouter(prefix="/v1/admin", tags=["admin"], dependencies=[AdminAccess])

    @admin.post("/reset")
    async def reset() -> Response:
        return ok()

    app.include_router(things)
    app.include_router(admin)
    return app


@pytest.fixture(scope="module")
def client() -> TestClient:
    return TestClient(make_app())


@pytest.fixture(scope="module")
def document(client: TestClient) -> dict[str, Any]:
    answer = client.get("/openapi.json")
    assert answer.status_code == 200
    data: dict[str, Any] = answer.json()
    return data


def operations(document: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any]]]:
    for path, methods in document["paths"].items():
        for method, operation in methods.items():
            yield f"{method.upper()} {path}", operation


def refs(value: Any) -> Iterator[str]:
    if isinstance(value, dict):
        for key, item in value.items():
            if key == "$ref":
                yield item
            else:
                yield from refs(item)
    elif isinstance(value, list):
        for item in value:
            yield from refs(item)


def test_the_document_is_valid_openapi_3_1(document: dict[str, Any]) -> None:
    assert document["openapi"].startswith("3.1")
    validate(document)


def test_every_reference_resolves_in_the_components(document: dict[str, Any]) -> None:
    schemas = document["components"]["schemas"]
    found = set(refs(document))
    assert "#/components/schemas/Part" in found  # the $defs of a body read by the route
    for ref in found:
        assert ref.startswith("#/components/schemas/"), ref
        assert ref.removeprefix("#/components/schemas/") in schemas, ref


def test_a_self_read_body_is_a_named_component(document: dict[str, Any]) -> None:
    body = document["paths"]["/v1/things/{name}/parcels"]["post"]["requestBody"]
    assert body["content"]["application/json"]["schema"] == {"$ref": "#/components/schemas/Parcel"}


def test_no_operation_declares_422(document: dict[str, Any]) -> None:
    for label, operation in operations(document):
        assert "422" not in operation["responses"], label
    assert "HTTPValidationError" not in document["components"]["schemas"]


@pytest.mark.parametrize(
    ("label", "statuses"),
    [
        ("POST /v1/things", {"201", "400", "401", "409", "429", "500"}),
        ("GET /v1/things/{name}", {"200", "400", "401", "404", "429", "500"}),
        ("POST /v1/things/{name}/parcels", {"202", "400", "401", "404", "429", "500"}),
        ("POST /v1/admin/reset", {"200", "400", "401", "429", "500"}),
    ],
)
def test_each_operation_declares_its_error_envelopes(
    document: dict[str, Any], label: str, statuses: set[str]
) -> None:
    responses = dict(operations(document))[label]["responses"]
    assert set(responses) == statuses
    for status, answer in responses.items():
        schema = answer["content"]["application/json"]["schema"]
        if status.startswith("2"):
            assert schema == {"$ref": "#/components/schemas/Envelope"}
        else:
            name = schema["$ref"].removeprefix("#/components/schemas/")
            envelope = document["components"]["schemas"][name]
            assert envelope["required"] == ["Code", "Description", "Result"]
            for code in envelope["properties"]["Code"]["enum"]:
                assert code in answer["description"]


def test_error_envelopes_carry_the_codes_of_api_md(document: dict[str, Any]) -> None:
    schemas = document["components"]["schemas"]
    assert "invalid_email" in schemas["BadRequestEnvelope"]["properties"]["Code"]["enum"]
    assert schemas["UnauthorizedEnvelope"]["properties"]["Code"]["enum"] == ["authorization_failed"]
    assert schemas["ConflictEnvelope"]["properties"]["Code"]["enum"] == ["already_exists"]
    assert schemas["MethodNotAllowedEnvelope"]["properties"]["Code"]["enum"] == ["not_available"]


def test_security_schemes_follow_the_caller_each_route_needs(document: dict[str, Any]) -> None:
    ops = dict(operations(document))
    assert ops["GET /v1/things/{name}"]["security"] == [{"apiUser": []}]
    assert ops["POST /v1/admin/reset"]["security"] == [{"adminToken": []}]
    schemes = document["components"]["securitySchemes"]
    assert schemes["apiUser"]["scheme"] == "basic"
    assert schemes["adminToken"]["scheme"] == "bearer"


def test_operation_ids_name_tag_and_function(document: dict[str, Any]) -> None:
    ids = {label: op["operationId"] for label, op in operations(document)}
    assert ids["POST /v1/things"] == "things_create"
    assert ids["POST /v1/admin/reset"] == "admin_reset"
    assert len(set(ids.values())) == len(ids)


def test_docs_page_loads_nothing_from_elsewhere(client: TestClient) -> None:
    page = client.get("/docs")
    assert page.status_code == 200
    assert "://" not in page.text
    assets = re.findall(r"""(?:src|href)=["']([^"']+)["']""", page.text)
    assert "/docs/assets/swagger-ui-bundle.js" in assets
    assert "/docs/assets/swagger-ui.css" in assets
    for asset in assets:
        assert asset.startswith("/"), asset
        assert not asset.startswith("//"), asset
        answer = client.get(asset)
        assert answer.status_code == 200, asset
        assert answer.content, asset
