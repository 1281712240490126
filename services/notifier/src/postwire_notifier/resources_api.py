"""``/v1/topics``, ``/v1/queues`` and ``/v1/event-rules``: an account's MNS resources."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Response
from pydantic import Field, StrictInt

from postwire_common.errors import NotAvailable
from postwire_common.http.auth import CurrentPrincipal
from postwire_common.http.envelope import ok
from postwire_common.http.models import RequestModel
from postwire_common.http.routes import ApiRoute
from postwire_notifier.amqp_queues import AmqpQueues
from postwire_notifier.broker_users import BrokerUsers
from postwire_notifier.queue_receipts import STALE
from postwire_notifier.resource_store import Queue, ResourceStore, Subscription
from postwire_notifier.resources import (
    MAX_MESSAGE_SIZE,
    MESSAGE_RETENTION,
    QUEUE_NAME_MAX,
    RULE_NAME_MAX,
    SUBSCRIPTION_NAME_MAX,
    TOPIC_NAME_MAX,
    VISIBILITY_TIMEOUT,
    ContentFormat,
    Strategy,
    check_event_types,
    check_name,
    check_range,
    check_rule_endpoints,
    parse_endpoint,
)


class CreateTopic(RequestModel):
    name: str = Field(description="1-256 of letters, digits, '-', '_', '.'.")


class CreateQueue(RequestModel):
    name: str = Field(description="1-120 of letters, digits, '-', '_', '.'.")
    visibility_timeout: int | None = Field(
        None, description="Seconds a received message stays invisible: 1-43200, default 30."
    )
    message_retention: int | None = Field(
        None, description="Seconds a message is kept: 60-1296000, default 345600 (4 days)."
    )
    max_message_size: int | None = Field(None, description="Bytes: 1024-65536, default 65536.")


class Receive(RequestModel):
    # Strict: JSON's true is not a number (pydantic would read it as 1).
    max: StrictInt = Field(1, ge=1, le=16, description="Messages to receive at most: 1-16.")
    wait_seconds: StrictInt = Field(
        0, ge=0, le=30, description="Long polling: wait up to this long for a message, 0-30."
    )


class Acknowledge(RequestModel):
    receipt_handles: list[str] = Field(
        min_length=1,
        max_length=16,
        description="Receipt handles of received messages, 1-16 (as many as one receive).",
    )


class ChangeVisibility(RequestModel):
    visibility_timeout: StrictInt = Field(
        ge=0,
        le=43200,
        description="Seconds from now until the message is visible again, 0-43200 "
        "(past the queue's own visibility timeout too).",
    )


class CreateSubscription(RequestModel):
    name: str = Field(description="1-256 of letters, digits, '-', '_', '.'.")
    endpoint: str = Field(description="An http(s):// URL or queue:<name>.")
    notify_strategy: Strategy = Field(
        Strategy.BACKOFF_RETRY,
        description="BACKOFF_RETRY (3 retries, 10-20 s apart) or EXPONENTIAL_DECAY_RETRY "
        "(176 retries within a day, 1 s doubling to 512 s).",
    )
    content_format: ContentFormat = Field(
        ContentFormat.SIMPLIFIED,
        description="SIMPLIFIED (the seed's env_id=…&… line), JSON or XML.",
    )


class CreateRule(RequestModel):
    name: str = Field(description="1-64 of letters, digits, '-', '_', '.'.")
    event_types: list[str] = Field(
        description="Deliver:SendSuccessfully, Deliver:SendFailed, Deliver:Request, "
        "Deliver:SoftBounce, Track:Open, Track:Click, Track:Unsubscribe, Track:SpamReport."
    )
    endpoints: list[str] = Field(
        description="Exactly one topic:<name>, or any http(s):// URLs and queue:<name>; "
        "for those the rule makes its topic rule.<name> with one subscription each."
    )
    notify_strategy: Strategy = Field(
        Strategy.BACKOFF_RETRY, description="For the subscriptions the rule makes."
    )
    content_format: ContentFormat = Field(
        ContentFormat.SIMPLIFIED, description="For the subscriptions the rule makes."
    )


def topics_router(store: ResourceStore) -> APIRouter:
    api = APIRouter(prefix="/v1/topics", tags=["topics"], route_class=ApiRoute)

    @api.post("", status_code=201, summary="Create a topic")
    async def create(body: CreateTopic, principal: CurrentPrincipal) -> Response:
        name = check_name("topic", body.name, TOPIC_NAME_MAX)
        await store.create_topic(principal.tenant_id, name)
        return ok({"name": name}, status=201)

    @api.get("", summary="List topics")
    async def list_(principal: CurrentPrincipal) -> Response:
        return ok(await store.topics(principal.tenant_id))

    @api.delete("/{name}", summary="Delete a topic and its subscriptions")
    async def delete(name: str, principal: CurrentPrincipal) -> Response:
        await store.delete_topic(principal.tenant_id, name)
        return ok()

    @api.post("/{topic}/subscriptions", status_code=201, summary="Subscribe an endpoint")
    async def subscribe(
        topic: str, body: CreateSubscription, principal: CurrentPrincipal
    ) -> Response:
        sub = Subscription(
            topic,
            check_name("subscription", body.name, SUBSCRIPTION_NAME_MAX),
            str(parse_endpoint(body.endpoint, topics_allowed=False)),
            body.notify_strategy,
            body.content_format,
        )
        app_key = await store.create_subscription(principal.tenant_id, sub)
        made = {
            "topic": topic,
            "name": sub.name,
            "endpoint": sub.endpoint,
            "notify_strategy": sub.notify_strategy.value,
            "content_format": sub.content_format.value,
        }
        if app_key is not None:
            made["app_key"] = app_key  # signs its pushes; shown only now
        return ok(made, status=201)

    @api.get("/{topic}/subscriptions", summary="List a topic's subscriptions")
    async def subscriptions(topic: str, principal: CurrentPrincipal) -> Response:
        return ok(await store.subscriptions(principal.tenant_id, topic))

    @api.delete("/{topic}/subscriptions/{name}", summary="Delete a subscription")
    async def unsubscribe(topic: str, name: str, principal: CurrentPrincipal) -> Response:
        await store.delete_subscription(principal.tenant_id, topic, name)
        return ok()

    return api


def queues_router(store: ResourceStore, messages: AmqpQueues, users: BrokerUsers) -> APIRouter:
    api = APIRouter(prefix="/v1/queues", tags=["queues"], route_class=ApiRoute)

    @api.post("", status_code=201, summary="Create a queue")
    async def create(body: CreateQueue, principal: CurrentPrincipal) -> Response:
        queue = Queue(
            check_name("queue", body.name, QUEUE_NAME_MAX),
            check_range("visibility_timeout", body.visibility_timeout, VISIBILITY_TIMEOUT),
            check_range("message_retention", body.message_retention, MESSAGE_RETENTION),
            check_range("max_message_size", body.max_message_size, MAX_MESSAGE_SIZE),
        )
        await store.create_queue(principal.tenant_id, queue)
        try:
            await messages.declare(
                principal.tenant_id, queue.name, queue.visibility_timeout, queue.message_retention
            )
        except Exception:
            await store.delete_queue(principal.tenant_id, queue.name)
            raise
        return ok(await _show(principal.tenant_id, queue.name), status=201)

    async def _show(tenant_id: str, name: str) -> dict[str, Any]:
        counts = await messages.counts(tenant_id, name)  # purges first: dropped is current
        return await store.queue(tenant_id, name) | counts

    @api.get("", summary="List queues")
    async def list_(principal: CurrentPrincipal) -> Response:
        return ok(await store.queues(principal.tenant_id))

    @api.get("/{name}", summary="Show a queue: settings, depth, in flight, oldest age")
    async def show(name: str, principal: CurrentPrincipal) -> Response:
        return ok(await _show(principal.tenant_id, name))

    @api.post("/{name}/receive", summary="Receive up to 16 messages, long-polling")
    async def receive(name: str, body: Receive, principal: CurrentPrincipal) -> Response:
        queue = await store.queue(principal.tenant_id, name)
        found = await messages.receive(
            principal.tenant_id, name, body.max, queue["visibility_timeout"], body.wait_seconds
        )
        return ok(found)

    @api.delete("/{name}/messages/{receipt_handle}", summary="Acknowledge a received message")
    async def acknowledge(name: str, receipt_handle: str, principal: CurrentPrincipal) -> Response:
        await messages.delete(principal.tenant_id, name, receipt_handle)
        return ok()

    @api.put(
        "/{name}/messages/{receipt_handle}/visibility",
        summary="Change when a received message is visible again",
        description="MNS's ChangeMessageVisibility. The answer's `receipt_handle` "
        "replaces the one given, which is stale from now on; `next_visible_time` is when "
        "the message is visible again (a shortened visibility may be served a little "
        "later, never later than the queue's visibility timeout from now).",
    )
    async def change_visibility(
        name: str, receipt_handle: str, body: ChangeVisibility, principal: CurrentPrincipal
    ) -> Response:
        handle, visible_at = await messages.change_visibility(
            principal.tenant_id, name, receipt_handle, body.visibility_timeout
        )
        return ok({"receipt_handle": handle, "next_visible_time": visible_at})

    @api.delete(
        "/{name}/messages",
        summary="Acknowledge up to 16 received messages at once",
        description="MNS's BatchDeleteMessage. `deleted` lists the handles acknowledged; "
        "`failed` those that are stale (deleted already, visible again, or received again "
        "since), each with `not_found`. The call itself fails only for a queue that does "
        "not exist.",
    )
    async def acknowledge_many(
        name: str, body: Acknowledge, principal: CurrentPrincipal
    ) -> Response:
        await store.queue(principal.tenant_id, name)  # not_found for a queue that is not
        handles = list(dict.fromkeys(body.receipt_handles))
        done = await messages.delete_many(principal.tenant_id, name, handles)
        failed = [
            {"receipt_handle": h, "code": "not_found", "message": STALE}
            for h in handles
            if h not in done
        ]
        return ok({"deleted": [h for h in handles if h in done], "failed": failed})

    @api.delete("/{name}", summary="Delete a queue and its messages")
    async def delete(name: str, principal: CurrentPrincipal) -> Response:
        made = await users.list(principal.tenant_id, name)
        await store.delete_queue(principal.tenant_id, name)  # its credentials' rows too
        await users.delete_users([row["username"] for row in made])
        await messages.remove(principal.tenant_id, name)
        return ok()

    return api


def rules_router(store: ResourceStore) -> APIRouter:
    api = APIRouter(prefix="/v1/event-rules", tags=["event-rules"], route_class=ApiRoute)

    @api.post("", status_code=201, summary="Create an event rule; it takes effect at once")
    async def create(body: CreateRule, principal: CurrentPrincipal) -> Response:
        name = check_name("event rule", body.name, RULE_NAME_MAX)
        types = check_event_types(body.event_types)
        endpoints = check_rule_endpoints(body.endpoints)
        topic, app_keys = await store.create_rule(
            principal.tenant_id, name, types, endpoints, body.notify_strategy, body.content_format
        )
        made = await store.rule(principal.tenant_id, name)
        # The app_key of each HTTP subscription the rule made: shown only now.
        return ok(made | {"topic": topic, "app_keys": app_keys}, status=201)

    @api.get("", summary="List event rules")
    async def list_(principal: CurrentPrincipal) -> Response:
        return ok(await store.rules(principal.tenant_id))

    @api.get("/{name}", summary="Show an event rule")
    async def show(name: str, principal: CurrentPrincipal) -> Response:
        return ok(await store.rule(principal.tenant_id, name))

    @api.delete("/{name}", summary="Delete an event rule and the topic it made")
    async def delete(name: str, principal: CurrentPrincipal) -> Response:
        await store.delete_rule(principal.tenant_id, name)
        return ok()

    def unchangeable(name: str) -> NotAvailable:
        return NotAvailable(
            f"event rule {name} cannot be changed (as in the seed): delete it and create a new one"
        )

    @api.put("/{name}", summary="Not available: event rules are not changed")
    async def replace(name: str, principal: CurrentPrincipal) -> Response:
        raise unchangeable(name)

    @api.patch("/{name}", summary="Not available: event rules are not changed")
    async def modify(name: str, principal: CurrentPrincipal) -> Response:
        raise unchangeable(name)

    return api
