"""The AsyncAPI 3.0 document of the bus, served at ``/asyncapi.json`` by every process.

Built from ``broker/topology.py`` (exchanges, queues, binding keys) and ``schemas/``
(one pydantic class per bus message, ``BUS_MESSAGES``), so it says what the code does::

    channels     one per publication (routing key on its exchange), one per work queue,
                 its ``.dead`` and ``.parked`` queues, and the account queue (being built)
    operations   who sends (``PUBLICATIONS``), who receives (``CONSUMERS``), who re-drives
    messages     ``model_json_schema()`` of each bus message, ``$defs`` moved to
                 ``#/components/schemas``; the account queue's SIMPLIFIED, JSON and XML

Tests check it against the official AsyncAPI 3.0.0 JSON Schema, and that every message
the services publish or subscribe to is here (``test_common_asyncapi.py``).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from fastapi import FastAPI
from fastapi.responses import JSONResponse
from faststream.rabbit import RabbitExchange, RabbitQueue
from pydantic import BaseModel

from postwire_common.broker import topology
from postwire_common.broker.redrive import MAX_REDRIVES
from postwire_common.schemas import (
    BUS_MESSAGES,
    MNS_EVENT_TYPES,
    DomainRemoved,
    EventBatch,
    EventType,
    OutboundBatches,
    SuppressionChanges,
    TaskCounts,
)

__all__ = ["ACCOUNT_QUEUE_FIELDS", "CONSUMERS", "PUBLICATIONS", "document", "install"]

PATH = "/asyncapi.json"
AMQP = "0.3.0"  # AMQP bindings version
SERVER = "rabbitmq"


@dataclass(frozen=True)
class Publication:
    """A service publishes ``model`` to ``exchange`` with ``routing_key`` (outbox relay)."""

    service: str
    exchange: RabbitExchange
    routing_key: str
    model: type[BaseModel]
    summary: str


PUBLICATIONS: tuple[Publication, ...] = (
    Publication("ingest", topology.OUTBOUND, topology.OUTBOUND_KEY, OutboundBatches,
                "Recipients of accepted requests, per destination domain (ids only)."),
    Publication("ingest", topology.EVENTS, "ingest.request", EventBatch,
                "A request event per accepted recipient."),
    Publication("ingest", topology.OUTBOUND, topology.DOMAINS_KEY, DomainRemoved,
                "A sender domain was deleted: delivery drops its DKIM keys."),
    Publication("delivery", topology.EVENTS, "delivery.result", EventBatch,
                "Delivery results: delivered, soft_bounce, failed, invalid."),
    Publication("delivery", topology.EVENTS, "delivery.report", EventBatch,
                "Bounces and complaints received after delivery: failed, spam_report."),
    Publication("events", topology.SUPPRESSIONS, topology.SUPPRESSIONS_KEY,
                SuppressionChanges, "Addresses added to or removed from suppression lists."),
    Publication("events", topology.TASKS, topology.TASK_COUNTS_KEY, TaskCounts,
                "Delivered and failed counts of tasks that changed, at most every second."),
    Publication("events", topology.EVENTS, "events.tracking", EventBatch,
                "Tracking hits: open, click (with url), unsubscribe; ip, user_agent, machine."),
)  # fmt: skip

# Work queue -> (the service that consumes it, the message it reads).
CONSUMERS: dict[str, tuple[str, type[BaseModel]]] = {
    topology.DELIVERY_INTAKE.queue.name: ("delivery", OutboundBatches),
    topology.DELIVERY_DOMAINS.queue.name: ("delivery", DomainRemoved),
    topology.EVENTS_LOG.queue.name: ("events", EventBatch),
    topology.NOTIFIER_EVENTS.queue.name: ("notifier", EventBatch),
    topology.INGEST_SUPPRESSIONS.queue.name: ("ingest", SuppressionChanges),
    topology.INGEST_TASK_COUNTS.queue.name: ("ingest", TaskCounts),
}

# The fields of an account queue message, in their order (the Aliyun seed's, API.md).
ACCOUNT_QUEUE_FIELDS: dict[str, str] = {
    "env_id": "The recipient message's id.",
    "msg_id": "Message-ID of the mail as sent, with angle brackets.",
    "account": "Sender address the mail was sent as.",
    "from": "Envelope and header From address.",
    "rcpt": "Recipient address.",
    "recv_time": "When the message was accepted: YYYY-MM-DD HH:MM:SS, UTC.",
    "end_time": "When this event happened: YYYY-MM-DD HH:MM:SS, UTC.",
    "status": "0 delivered, 2 invalid address, 3 spam, 4 failed; empty unless finished.",
    "event": "deliver for every Deliver:* event, else the tracking event's name.",
    "region": "POSTWIRE_REGION of the deployment.",
    "err_code": "SMTP reply code of the recipient's server, if any.",
    "err_msg": "SMTP reply text, or why we gave up, if any.",
}
_TIME = r"(\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2})?"
_EVENT_NAMES = ("deliver", *(e.value for e in EventType if MNS_EVENT_TYPES[e].startswith("Track:")))
_PATTERNS = {
    "recv_time": _TIME,
    "end_time": _TIME,
    "status": "[0234]?",
    "event": f"({'|'.join(_EVENT_NAMES)})",
    "err_code": r"\d*",
}
# SIMPLIFIED: printable ASCII but & % + =, which are percent-encoded (UTF-8), as is the rest.
_ENCODED = r"(?:[ -$'-*,-<>-~]|%[0-9A-F]{2})*"
ACCOUNT_QUEUE = "account.queue"
ACCOUNT_FORMATS = {  # content format -> (message name, content type)
    "SIMPLIFIED": ("AccountQueueSimplified", "text/plain"),
    "JSON": ("AccountQueueJson", "application/json"),
    "XML": ("AccountQueueXml", "text/xml"),
}


def install(app: FastAPI) -> None:
    """Serve the document at ``/asyncapi.json`` (not an operation of the OpenAPI one)."""

    @app.get(PATH, include_in_schema=False)
    async def asyncapi() -> JSONResponse:
        return JSONResponse(document())


@lru_cache(maxsize=1)
def document() -> dict[str, Any]:
    schemas: dict[str, Any] = {}
    messages = {model.__name__: _bus_message(model, schemas) for model in BUS_MESSAGES}
    messages.update(_account_messages(schemas))
    channels, operations = _bus_channels()
    channels[ACCOUNT_QUEUE] = _account_channel()
    operations["notifier.send.account.queue"] = {
        "action": "send",
        "channel": _ref("channels", ACCOUNT_QUEUE),
        "title": "notifier sends an account's events to its queues",
        "description": "Being built: each event an account's event rule routes to one of its "
        "queues, in the subscription's content format. Today these queues live in the "
        "notifier's database and are read over HTTP (`POST /v1/queues/{name}/receive`).",
        "tags": [{"name": "notifier"}],
        "messages": [_channel_message(ACCOUNT_QUEUE, name) for name, _ in ACCOUNT_FORMATS.values()],
    }
    return {
        "asyncapi": "3.0.0",
        "info": {
            "title": "postwire bus",
            "version": "1",
            "description": (topology.__doc__ or "").strip(),
            "tags": [{"name": s} for s in ("ingest", "delivery", "events", "notifier")],
        },
        "defaultContentType": "application/json",
        "servers": {
            SERVER: {
                "host": "{host}",
                "protocol": "amqp",
                "protocolVersion": "0.9.1",
                "pathname": "{vhost}",
                "description": "RabbitMQ, as POSTWIRE_BROKER_URL names it.",
                "variables": {
                    "host": {"default": "127.0.0.1:5672", "description": "host:port"},
                    "vhost": {"default": "/", "description": "one vhost per deployment"},
                },
            }
        },
        "channels": channels,
        "operations": operations,
        "components": {"schemas": schemas, "messages": messages},
    }


def _bus_channels() -> tuple[dict[str, Any], dict[str, Any]]:
    channels: dict[str, Any] = {}
    operations: dict[str, Any] = {}
    for p in PUBLICATIONS:
        channel = f"{p.exchange.name}.{p.routing_key}"
        channels[channel] = {
            "address": p.routing_key,
            "title": f"{p.exchange.name} ({p.exchange.type.value}), key {p.routing_key}",
            "servers": [_ref("servers", SERVER)],
            "messages": {p.model.__name__: _ref("components", "messages", p.model.__name__)},
            "bindings": {"amqp": {"is": "routingKey", "exchange": _exchange(p.exchange),
                                  "bindingVersion": AMQP}},
        }  # fmt: skip
        operations[f"{p.service}.send.{channel}"] = _operation(
            "send", p.service, channel, p.model, p.summary, confirmed=True
        )
    for route in topology.ROUTES:
        service, model = CONSUMERS[route.queue.name]
        work, dead = route.queue.name, topology.dead_queue(route.queue).name
        parked = topology.parked_name(work)
        bound = f"bound to {route.exchange.name} with key `{route.binding_key}`"
        channels[work] = _queue(route.queue, model, f"Work queue, {bound}.")
        channels[dead] = _queue(topology.dead_queue(route.queue), model,
            f"What {work} dead-lettered (failed {topology.DELIVERY_LIMIT} times), "
            f"via {topology.DEAD.name} with key `{work}`.")  # fmt: skip
        channels[parked] = _queue(topology.parked_queue(route.queue), model,
            f"Messages re-driven {MAX_REDRIVES} times, left for an operator.")  # fmt: skip
        operations.update({
            f"{service}.receive.{work}": _operation("receive", service, work, model,
                route.queue.name + ": consumed, acknowledged once handled."),
            f"{service}.redrive.{dead}": _operation("receive", service, dead, model,
                "Re-drive: taken back from the dead queue while the service is healthy."),
            f"{service}.requeue.{work}": _operation("send", service, work, model,
                "Re-drive: put back on the work queue (default exchange), "
                "x-postwire-redriven counted up.", confirmed=True),
            f"{service}.park.{parked}": _operation("send", service, parked, model,
                "Re-drive: parked after too many re-drives.", confirmed=True),
        })  # fmt: skip
    return channels, operations


def _bus_message(model: type[BaseModel], schemas: dict[str, Any]) -> dict[str, Any]:
    schema = model.model_json_schema(ref_template="#/components/schemas/{model}")
    schemas.update(schema.pop("$defs", {}))
    schemas[model.__name__] = schema
    return {
        "name": model.__name__,
        "title": model.__name__,
        "contentType": "application/json",
        "description": " ".join((model.__doc__ or "").split()),
        "payload": _ref("components", "schemas", model.__name__),
        "bindings": {"amqp": {"messageType": model.__name__, "bindingVersion": AMQP}},
    }


def _account_messages(schemas: dict[str, Any]) -> dict[str, Any]:
    fields = "&".join(f"{name}=…" for name in ACCOUNT_QUEUE_FIELDS)
    line = "&".join(f"{name}={_PATTERNS.get(name, _ENCODED)}" for name in ACCOUNT_QUEUE_FIELDS)
    schemas["AccountQueueSimplified"] = {
        "type": "string",
        "pattern": f"^{line}$",
        "description": f"One ASCII line, `{fields}`. Values are written as they are (spaces, "
        "`:`, `@`, `<`, `>` stay) but `&`, `=`, `+`, `%`, control characters and non-ASCII "
        "are percent-encoded (UTF-8): `urllib.parse.parse_qs(body, keep_blank_values=True)` "
        "gives back every value. A missing value is empty.",
        "examples": ["env_id=457323378&msg_id=77041400535408&account=test@test.com"
                     "&from=test@test.com&rcpt=abc@abc.com&recv_time=2017-04-14 11:44:47"
                     "&end_time=2017-04-14 11:44:48&status=0&event=deliver&region=cn-hangzhou"
                     "&err_code=250&err_msg=250 Send Mail OK"],
    }  # fmt: skip
    schemas["AccountQueueFields"] = {
        "type": "object",
        "description": "The same fields as SIMPLIFIED, unencoded strings (empty if missing).",
        "properties": {
            name: {"type": "string", "description": description}
            | ({"pattern": f"^{_PATTERNS[name]}$"} if name in _PATTERNS else {})
            for name, description in ACCOUNT_QUEUE_FIELDS.items()
        },
        "required": list(ACCOUNT_QUEUE_FIELDS),
        "additionalProperties": False,
    }
    shapes = {
        "SIMPLIFIED": ("AccountQueueSimplified", "The seed's one-line `name=value&…` body."),
        "JSON": ("AccountQueueFields", "One flat JSON object, UTF-8."),
        "XML": ("AccountQueueFields", "`<?xml …?><Message>` with one child element per "
                "field, in order, UTF-8 (characters XML cannot carry become U+FFFD)."),
    }  # fmt: skip
    messages: dict[str, Any] = {}
    for fmt, (name, content_type) in ACCOUNT_FORMATS.items():
        schema, description = shapes[fmt]
        messages[name] = {
            "name": name,
            "title": f"Account queue message, {fmt}",
            "contentType": content_type,
            "description": f"Content format {fmt} of a subscription. {description}",
            "payload": _ref("components", "schemas", schema),
        }
    return messages


def _account_channel() -> dict[str, Any]:
    return {
        "address": "postwire.acct.{account}.{queue}",
        "title": "An account's queue (being built)",
        "description": "Being built: the queue an account created (`POST /v1/queues`), fed by "
        "its event rules. Each message is one event, in one of three content formats; the "
        "AMQP content type says which.",
        "parameters": {
            "account": {"description": "The account (tenant) id."},
            "queue": {"description": "The queue's name, unique in the account."},
        },
        "messages": {
            name: _ref("components", "messages", name) for name, _ in ACCOUNT_FORMATS.values()
        },
    }


def _operation(
    action: str, service: str, channel: str, model: type[BaseModel], summary: str,
    *, confirmed: bool = False,
) -> dict[str, Any]:  # fmt: skip
    binding = {"deliveryMode": 2, "mandatory": True} if confirmed else {"ack": True}
    return {
        "action": action,
        "channel": _ref("channels", channel),
        "title": f"{service} {action}s {model.__name__}",
        "summary": summary,
        "tags": [{"name": service}],
        "messages": [_channel_message(channel, model.__name__)],
        "bindings": {"amqp": binding | {"bindingVersion": AMQP}},
    }


def _queue(queue: RabbitQueue, model: type[BaseModel], description: str) -> dict[str, Any]:
    return {
        "address": queue.name,
        "title": queue.name,
        "description": description,
        "servers": [_ref("servers", SERVER)],
        "messages": {model.__name__: _ref("components", "messages", model.__name__)},
        "bindings": {"amqp": {"is": "queue", "bindingVersion": AMQP,
                              "x-arguments": dict(queue.arguments or {}),
                              "queue": {"name": queue.name, "durable": queue.durable,
                                        "exclusive": queue.exclusive,
                                        "autoDelete": queue.auto_delete}}},
    }  # fmt: skip


def _exchange(exchange: RabbitExchange) -> dict[str, Any]:
    return {
        "name": exchange.name,
        "type": exchange.type.value,
        "durable": exchange.durable,
        "autoDelete": exchange.auto_delete,
    }


def _channel_message(channel: str, name: str) -> dict[str, str]:
    return {"$ref": f"#/channels/{_escape(channel)}/messages/{name}"}


def _ref(*parts: str) -> dict[str, str]:
    return {"$ref": "#/" + "/".join(_escape(p) for p in parts)}


def _escape(part: str) -> str:
    return part.replace("~", "~0").replace("/", "~1")
