"""Consumer failure handling: delivery counts and backoff."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest

from postwire_common.broker.consume import MAX_BACKOFF, backoff_seconds, delivery_count


@pytest.mark.parametrize(
    ("headers", "count"),
    [
        (None, 0),
        ({}, 0),
        ({"x-delivery-count": 0}, 0),
        ({"x-delivery-count": 3}, 3),
        ({"x-delivery-count": "7"}, 7),
        ({"x-delivery-count": "many"}, 0),
        ({"x-delivery-count": None}, 0),
        ({"x-other": 5}, 0),
    ],
)
def test_delivery_count_reads_x_delivery_count(headers: dict[str, Any] | None, count: int) -> None:
    message: Any = SimpleNamespace(headers=headers)
    assert delivery_count(message) == count


def test_backoff_starts_small_and_positive() -> None:
    assert 0 < backoff_seconds(0) <= 1


def test_backoff_grows_with_the_delivery_count() -> None:
    waits = [backoff_seconds(n) for n in range(12)]
    assert waits == sorted(waits)
    assert waits[1] > waits[0]
    assert waits[4] > waits[2] > waits[1]


@pytest.mark.parametrize("count", [10, 20, 50, 1000, 10**9])
def test_backoff_is_capped(count: int) -> None:
    assert backoff_seconds(count) == MAX_BACKOFF


def test_backoff_never_exceeds_the_cap() -> None:
    assert all(backoff_seconds(n) <= MAX_BACKOFF for n in range(200))
    assert MAX_BACKOFF <= 300
