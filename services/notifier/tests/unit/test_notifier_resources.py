"""The pure rules of topics, queues, subscriptions and event rules."""

from __future__ import annotations

import random

import pytest

from postwire_common.errors import EmptyValue, InvalidValue
from postwire_notifier.resources import (
    EVENT_TYPES,
    EndpointKind,
    Strategy,
    check_event_types,
    check_rule_endpoints,
    parse_endpoint,
    retry_waits,
)


def test_backoff_retry_is_three_retries_ten_to_twenty_seconds_apart() -> None:
    waits = retry_waits(Strategy.BACKOFF_RETRY, random.Random(7))
    assert len(waits) == 3
    assert all(10.0 <= w <= 20.0 for w in waits)


def test_exponential_decay_retry_is_176_retries_within_a_day() -> None:
    waits = retry_waits(Strategy.EXPONENTIAL_DECAY_RETRY)
    assert len(waits) == 176
    assert waits[:10] == [1, 2, 4, 8, 16, 32, 64, 128, 256, 512]
    assert set(waits[10:]) == {512}
    assert sum(waits) <= 86400


def test_event_types_follow_api_md() -> None:
    assert EVENT_TYPES[:4] == (
        "Deliver:Request",
        "Deliver:SendSuccessfully",
        "Deliver:SoftBounce",
        "Deliver:SendFailed",
    )
    assert check_event_types(["Deliver:SendFailed", "Deliver:SendFailed"]) == ["Deliver:SendFailed"]
    with pytest.raises(EmptyValue):
        check_event_types([])


@pytest.mark.parametrize(
    ("value", "kind", "target"),
    [
        ("queue:results", EndpointKind.QUEUE, "results"),
        ("topic:a.b", EndpointKind.TOPIC, "a.b"),
        ("https://hooks.example/in?x=1", EndpointKind.HTTP, "https://hooks.example/in?x=1"),
    ],
)
def test_endpoints_parse(value: str, kind: EndpointKind, target: str) -> None:
    endpoint = parse_endpoint(value, topics_allowed=True)
    assert (endpoint.kind, endpoint.target, str(endpoint)) == (kind, target, value)


@pytest.mark.parametrize(
    ("values", "why"),
    [
        (["topic:a", "queue:b"], "cannot be combined"),
        (["topic:a", "topic:b"], "at most one topic"),
        (["topic:sms.x"], "SMS-only"),
        (["mailto:a@b.c"], "endpoint"),
        (["queue:"], "name"),
        ([f"queue:q{i}" for i in range(11)], "at most 10"),
    ],
)
def test_rule_endpoints_keep_the_seeds_rules(values: list[str], why: str) -> None:
    with pytest.raises((InvalidValue, EmptyValue)) as caught:
        check_rule_endpoints(values)
    assert why in caught.value.description


def test_subscriptions_cannot_point_at_topics() -> None:
    with pytest.raises(InvalidValue):
        parse_endpoint("topic:a", topics_allowed=False)


def test_repeated_endpoints_count_once() -> None:
    found = check_rule_endpoints(["queue:a", "queue:a", "http://h.example/"])
    assert [str(e) for e in found] == ["queue:a", "http://h.example/"]
