"""ApiRoute's checks of the query string: unknown parameters and a single-valued one
given twice are refused, naming it; a list parameter may repeat."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, FastAPI, Query
from fastapi.testclient import TestClient

from postwire_common.http.envelope import install_error_handlers, ok
from postwire_common.http.routes import ApiRoute


def client() -> TestClient:
    app = FastAPI()
    install_error_handlers(app)
    api = APIRouter(route_class=ApiRoute)

    @api.get("/things")
    async def things(
        name: str | None = None,
        tag: Annotated[list[str] | None, Query()] = None,
        limit: int = 10,
    ) -> object:
        return ok({"name": name, "tag": tag, "limit": limit})

    app.include_router(api)
    return TestClient(app)


def test_declared_parameters_are_read() -> None:
    answer = client().get("/things", params=[("name", "a"), ("tag", "x"), ("tag", "y")])
    assert answer.status_code == 200, answer.text
    assert answer.json()["Result"] == {"name": "a", "tag": ["x", "y"], "limit": 10}


def test_an_unknown_parameter_is_refused_with_the_accepted_ones() -> None:
    answer = client().get("/things", params={"nmae": "a"})
    assert answer.status_code == 400
    assert answer.json()["Description"] == (
        "nmae: unknown query parameter (accepted: limit, name, tag)"
    )


def test_a_single_valued_parameter_given_twice_is_refused() -> None:
    for repeated in ("name", "limit"):
        answer = client().get("/things", params=[(repeated, "1"), (repeated, "2")])
        assert answer.status_code == 400
        assert answer.json()["Code"] == "invalid_value"
        assert answer.json()["Description"] == f"{repeated}: given more than once"
