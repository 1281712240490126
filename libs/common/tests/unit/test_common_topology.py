"""The broker topology: quorum work queues with dead-lettering; events fanned out once."""

from __future__ import annotations

import pytest

from postwire_common.broker import topology
from postwire_common.broker.topology import (
    DEAD,
    DELIVERY_INTAKE,
    DELIVERY_LIMIT,
    EVENTS,
    EXCHANGES,
    ROUTES,
    Route,
    dead_queue,
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


def test_every_event_goes_to_the_events_service_and_the_notifier_in_parallel() -> None:
    consumers = {r.queue.name for r in ROUTES if r.exchange.name == EVENTS.name}
    assert consumers == {"events.log", "notifier.events"}
    assert all(r.binding_key == "#" for r in ROUTES if r.exchange.name == EVENTS.name)


def test_recipients_go_to_delivery_intake() -> None:
    assert DELIVERY_INTAKE.exchange.name == "postwire.outbound"
    assert DELIVERY_INTAKE.queue.name == "delivery.intake"


def test_every_exchange_a_route_uses_is_declared() -> None:
    declared = {e.name for e in EXCHANGES}
    assert {r.exchange.name for r in ROUTES} | {DEAD.name} <= declared
