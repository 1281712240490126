"""The AsyncAPI document: valid AsyncAPI 3.0.0, complete, and served at /asyncapi.json.

Complete means: every message class the services publish (``Outgoing(...)`` call sites)
or subscribe to (``@broker.subscriber`` handlers) is a bus message of the document, on
the exchange and routing key, or the queue, that the code uses. The services' sources are
read with ``ast``, not imported: a new publish or subscriber fails here until it is
documented.
"""

from __future__ import annotations

import ast
import json
import re
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from jsonschema import Draft7Validator

from postwire_common import asyncapi
from postwire_common.broker import topology
from postwire_common.config import Settings
from postwire_common.http.app import build_app
from postwire_common.schemas import BUS_MESSAGES

ROOT = Path(__file__).resolve().parents[4]
# The official schema, fetched by `scripts/bootstrap dev` from its npm package (pinned,
# hash-checked) into .dev: it is another project's file and is not committed.
SCHEMA = Path(__file__).parents[4] / ".dev" / "asyncapi" / "3.0.0.json"
SOURCES = sorted(ROOT.glob("services/*/src/**/*.py"))
API_MD_EXAMPLE = (
    "env_id=457323378&msg_id=77041400535408&account=test@test.com&from=test@test.com"
    "&rcpt=abc@abc.com&recv_time=2017-04-14 11:44:47&end_time=2017-04-14 11:44:48"
    "&status=0&event=deliver&region=cn-hangzhou&err_code=250&err_msg=250 Send Mail OK"
)


@pytest.fixture(scope="module")
def document() -> dict[str, Any]:
    return asyncapi.document()


def test_the_document_is_valid_asyncapi_3(document: dict[str, Any]) -> None:
    validator = Draft7Validator(json.loads(SCHEMA.read_text()))
    errors = [
        f"{list(e.absolute_path)}: {e.message[:200]}" for e in validator.iter_errors(document)
    ]
    assert errors == []
    assert document["asyncapi"] == "3.0.0"


def test_the_schema_file_rejects_what_is_not_asyncapi_3(document: dict[str, Any]) -> None:
    validator = Draft7Validator(json.loads(SCHEMA.read_text()))
    wrong = json.loads(json.dumps(document))
    wrong["operations"]["notifier.send.account.queue"]["action"] = "publish"  # AsyncAPI 2
    assert not validator.is_valid(wrong)


def resolve(document: dict[str, Any], ref: str) -> Any:
    node: Any = document
    for part in ref.removeprefix("#/").split("/"):
        node = node[part.replace("~1", "/").replace("~0", "~")]
    return node


def refs(value: Any) -> list[str]:
    if isinstance(value, dict):
        found = [value["$ref"]] if isinstance(value.get("$ref"), str) else []
        return found + [ref for item in value.values() for ref in refs(item)]
    if isinstance(value, list):
        return [ref for item in value for ref in refs(item)]
    return []


def test_every_ref_resolves_inside_the_document(document: dict[str, Any]) -> None:
    found = refs(document)
    assert found
    for ref in found:
        assert ref.startswith("#/")
        resolve(document, ref)


def test_every_bus_message_has_its_schema_and_message(document: dict[str, Any]) -> None:
    components = document["components"]
    for model in BUS_MESSAGES:
        message = components["messages"][model.__name__]
        assert message["contentType"] == "application/json"
        assert resolve(document, message["payload"]["$ref"])["title"] == model.__name__


def test_every_route_and_its_dead_letters_are_channels(document: dict[str, Any]) -> None:
    for route in topology.ROUTES:
        for name in (route.queue.name, f"{route.queue.name}.dead", f"{route.queue.name}.parked"):
            assert document["channels"][name]["address"] == name
        service, model = asyncapi.CONSUMERS[route.queue.name]
        operation = document["operations"][f"{service}.receive.{route.queue.name}"]
        assert operation["action"] == "receive"
        assert model.__name__ in document["channels"][route.queue.name]["messages"]


# --- what the services' code publishes and consumes -------------------------------------


def topology_value(node: ast.expr, aliases: dict[str, str]) -> Any:
    """``topology.X[.attr…]`` (or a local name bound to ``topology.X``) → its value."""
    path: list[str] = []
    while isinstance(node, ast.Attribute):
        path.insert(0, node.attr)
        node = node.value
    assert isinstance(node, ast.Name), ast.dump(node)
    if node.id in aliases:
        path.insert(0, aliases[node.id])
    else:
        assert node.id == "topology", ast.dump(node)
    value: Any = topology
    for attr in path:
        value = getattr(value, attr)
    return value


def publishes() -> list[tuple[str, str, str, str]]:
    """(service, exchange, routing key, message class) of each ``Outgoing(...)`` with a model."""
    found = []
    for path in SOURCES:
        service = path.relative_to(ROOT).parts[1]
        for node in ast.walk(ast.parse(path.read_text())):
            if not (isinstance(node, ast.Call) and getattr(node.func, "id", "") == "Outgoing"):
                continue
            exchange, key, body = node.args[:3]
            assert isinstance(body, ast.Call), path
            assert isinstance(body.func, ast.Name), path
            routing = key.value if isinstance(key, ast.Constant) else topology_value(key, {})
            found.append((service, str(topology_value(exchange, {})), str(routing), body.func.id))
    return found


def subscribes() -> list[tuple[str, str, str]]:
    """(service, queue, message class) of each ``@broker.subscriber(queue, …)`` handler."""
    found = []
    for path in SOURCES:
        service = path.relative_to(ROOT).parts[1]
        tree = ast.parse(path.read_text())
        aliases = {
            target.id: node.value.attr
            for node in ast.walk(tree)
            if isinstance(node, ast.Assign) and isinstance(node.value, ast.Attribute)
            and isinstance(node.value.value, ast.Name) and node.value.value.id == "topology"
            for target in node.targets if isinstance(target, ast.Name)
        }  # fmt: skip
        for node in ast.walk(tree):
            if not isinstance(node, ast.AsyncFunctionDef | ast.FunctionDef):
                continue
            for decorator in node.decorator_list:
                if (
                    isinstance(decorator, ast.Call)
                    and getattr(decorator.func, "attr", "") == "subscriber"
                ):
                    queue = topology_value(decorator.args[0], aliases)
                    annotation = node.args.args[0].annotation
                    assert isinstance(annotation, ast.Name), path
                    found.append((service, queue.name, annotation.id))
    return found


def test_the_scan_finds_the_known_publishers_and_subscribers() -> None:
    assert ("ingest", "postwire.outbound", "outbound", "OutboundBatches") in publishes()
    assert {queue for _, queue, _ in subscribes()} == {r.queue.name for r in topology.ROUTES}


def test_every_published_message_is_documented(document: dict[str, Any]) -> None:
    names = {model.__name__ for model in BUS_MESSAGES}
    for service, exchange, key, model in publishes():
        assert model in names
        assert model in document["components"]["messages"]
        channel = document["channels"][f"{exchange}.{key}"]
        assert channel["bindings"]["amqp"]["exchange"]["name"] == exchange
        assert channel["address"] == key
        operation = document["operations"][f"{service}.send.{exchange}.{key}"]
        assert operation["messages"] == [{"$ref": f"#/channels/{exchange}.{key}/messages/{model}"}]


def test_every_subscribed_message_is_documented(document: dict[str, Any]) -> None:
    names = {model.__name__ for model in BUS_MESSAGES}
    for service, queue, model in subscribes():
        assert model in names
        assert (service, model) == (
            asyncapi.CONSUMERS[queue][0],
            asyncapi.CONSUMERS[queue][1].__name__,
        )
        assert model in document["channels"][queue]["messages"]


# --- the account queue (MNS-style) ------------------------------------------------------


def test_the_account_queue_offers_three_content_types(document: dict[str, Any]) -> None:
    channel = document["channels"]["account.queue"]
    assert channel["address"] == "postwire.acct.{account}.{queue}"
    assert set(channel["parameters"]) == {"account", "queue"}
    assert "being built" in channel["title"]
    types = {resolve(document, ref["$ref"])["contentType"] for ref in channel["messages"].values()}
    assert types == {"text/plain", "application/json", "text/xml"}


def test_simplified_pattern_matches_the_api_md_example(document: dict[str, Any]) -> None:
    schema = document["components"]["schemas"]["AccountQueueSimplified"]
    assert re.fullmatch(schema["pattern"], API_MD_EXAMPLE)
    assert schema["examples"] == [API_MD_EXAMPLE]
    assert not re.fullmatch(schema["pattern"], API_MD_EXAMPLE.replace("status=0", "status=1"))
    assert not re.fullmatch(schema["pattern"], API_MD_EXAMPLE + "&err_msg=again")
    names = re.findall(r"(\w+)=", API_MD_EXAMPLE)
    assert names == list(asyncapi.ACCOUNT_QUEUE_FIELDS)
    assert list(document["components"]["schemas"]["AccountQueueFields"]["required"]) == names


# --- served --------------------------------------------------------------------------------


def test_every_process_serves_it_outside_the_openapi_document() -> None:
    client = TestClient(build_app(Settings(), []))  # no lifespan: nothing is started
    answer = client.get("/asyncapi.json")
    assert answer.status_code == 200
    assert answer.headers["content-type"] == "application/json"
    assert answer.json() == asyncapi.document()
    assert "/asyncapi.json" not in client.get("/openapi.json").json()["paths"]
