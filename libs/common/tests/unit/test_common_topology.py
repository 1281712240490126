"""The broker topology: quorum work queues with dead-lettering, one TTL queue per delay."""

from __future__ import annotations

import pytest
from faststream.rabbit import RabbitQueue

from postwire_common.broker import topology
from postwire_common.broker.topology import (
    DEAD,
    DELIVERY_LIMIT,
    DELIVERY_OUTBOUND,
    NOTIFIER_PUSHES,
    ROUTES,
    Route,
    dead_queue,
    delivery_retry_queues,
    format_delay,
    notifier_retry_queues,
    retry_queue,
)

ROUTE_IDS = [route.queue.name for route in ROUTES]


def test_dead_letter_exchange_is_postwire_dead() -> None:
    assert DEAD.name == "postwire.dead"


def test_every_route_is_listed() -> None:
    declared = {value.queue.name for value in vars(topology).values() if isinstance(value, Route)}
    assert declared == set(ROUTE_IDS)


@pytest.mark.parametrize("route", ROUTES, ids=ROUTE_IDS)
def test_work_queue_is_a_durable_quorum_queue_with_delivery_limit(route: Route) -> None:
    args = route.queue.arguments
    assert route.queue.durable
    assert args["x-queue-type"] == "quorum"
    assert isinstance(args["x-delivery-limit"], int)
    assert args["x-delivery-limit"] == DELIVERY_LIMIT > 0


@pytest.mark.parametrize("route", ROUTES, ids=ROUTE_IDS)
def test_work_queue_dead_letters_at_least_once_to_postwire_dead(route: Route) -> None:
    args = route.queue.arguments
    assert args["x-dead-letter-exchange"] == "postwire.dead"
    assert args["x-dead-letter-strategy"] == "at-least-once"
    # at-least-once dead-lettering requires reject-publish overflow
    assert args["x-overflow"] == "reject-publish"


@pytest.mark.parametrize("route", ROUTES, ids=ROUTE_IDS)
def test_dead_letters_of_a_work_queue_reach_its_dead_queue(route: Route) -> None:
    dead = dead_queue(route.queue)
    assert dead.name == f"{route.queue.name}.dead"
    assert dead.routing_key == route.queue.arguments["x-dead-letter-routing-key"]
    assert dead.arguments["x-queue-type"] == "quorum"
    assert dead.durable


@pytest.mark.parametrize("route", ROUTES, ids=ROUTE_IDS)
def test_work_queue_is_bound_with_its_routes_key(route: Route) -> None:
    assert route.queue.routing_key == route.binding_key


@pytest.mark.parametrize(
    ("make", "exchange", "key"),
    [
        (delivery_retry_queues, "postwire.outbound", "outbound"),
        (notifier_retry_queues, "postwire.pushes", "push"),
    ],
)
@pytest.mark.parametrize(
    ("delay", "ttl_ms"),
    [(0.5, 500), (1, 1000), (1.5, 1500), (60, 60_000), (90, 90_000), (3600, 3_600_000)],
)
def test_retry_queue_holds_messages_for_the_delay_then_sends_them_back(
    make: object, exchange: str, key: str, delay: float, ttl_ms: int
) -> None:
    [queue] = make([delay])  # type: ignore[operator]
    args = queue.arguments
    assert args["x-message-ttl"] == ttl_ms
    assert args["x-dead-letter-exchange"] == exchange
    assert args["x-dead-letter-routing-key"] == key
    assert args["x-dead-letter-strategy"] == "at-least-once"
    assert args["x-overflow"] == "reject-publish"
    assert args["x-queue-type"] == "quorum"
    assert queue.durable


def test_retry_targets_are_the_work_routes() -> None:
    [delivery] = delivery_retry_queues([60])
    [notifier] = notifier_retry_queues([60])
    assert delivery.arguments["x-dead-letter-exchange"] == DELIVERY_OUTBOUND.exchange.name
    assert delivery.arguments["x-dead-letter-routing-key"] == DELIVERY_OUTBOUND.binding_key
    assert notifier.arguments["x-dead-letter-exchange"] == NOTIFIER_PUSHES.exchange.name
    assert notifier.arguments["x-dead-letter-routing-key"] == NOTIFIER_PUSHES.binding_key


def test_default_schedules_give_one_queue_name_per_delay() -> None:
    soft = delivery_retry_queues([60, 300, 900, 1800, 3600, 7200, 14400, 28800, 57600])
    hooks = notifier_retry_queues([180, 600, 1800, 3600, 21600, 43200, 86400])
    names = [q.name for q in soft + hooks]
    assert len(set(names)) == len(names)


@pytest.mark.parametrize(
    ("a", "b"), [(60, 90), (1, 1.5), (0.5, 1), (3600, 3601), (60, 3600), (0.001, 0.002)]
)
def test_different_delays_get_different_queue_names(a: float, b: float) -> None:
    assert retry_queue("delivery", a, DELIVERY_OUTBOUND).name != (
        retry_queue("delivery", b, DELIVERY_OUTBOUND).name
    )


@pytest.mark.parametrize(("a", "b"), [(60, 60), (60, 60.0), (0.5, 0.5), (3600, 3600.0)])
def test_equal_delays_get_the_same_queue_name_and_arguments(a: float, b: float) -> None:
    first: RabbitQueue = retry_queue("delivery", a, DELIVERY_OUTBOUND)
    second: RabbitQueue = retry_queue("delivery", b, DELIVERY_OUTBOUND)
    assert first.name == second.name
    assert first.arguments == second.arguments


def test_delivery_and_notifier_retry_queues_do_not_share_names() -> None:
    assert delivery_retry_queues([60])[0].name != notifier_retry_queues([60])[0].name


def test_work_and_retry_queue_names_do_not_collide() -> None:
    retry = {q.name for q in delivery_retry_queues([1, 60]) + notifier_retry_queues([1, 60])}
    assert retry.isdisjoint(ROUTE_IDS)


@pytest.mark.parametrize(
    ("millis", "text"),
    [
        (1000, "1s"),
        (30_000, "30s"),
        (90_000, "90s"),
        (60_000, "1m"),
        (600_000, "10m"),
        (5_400_000, "90m"),
        (3_600_000, "1h"),
        (86_400_000, "24h"),
        (500, "500ms"),
        (1500, "1500ms"),
        (1, "1ms"),
    ],
)
def test_format_delay(millis: int, text: str) -> None:
    assert format_delay(millis) == text
