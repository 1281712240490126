"""Time-ordered ids (ULID-like, Crockford base32)."""

from __future__ import annotations

import random
import re

import pytest

from postwire_common.ids import new_id

CROCKFORD = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"  # no I, L, O, U
ID_PATTERN = re.compile(f"^[{CROCKFORD}]{{26}}$")


def decode_crockford(text: str) -> int:
    value = 0
    for char in text:
        value = value * 32 + CROCKFORD.index(char)
    return value


def test_an_id_is_26_crockford_base32_characters() -> None:
    for _ in range(200):
        assert ID_PATTERN.match(new_id())


@pytest.mark.parametrize("now", [0.0, 1.0, 946_684_800.0, 1_714_000_000.123, 4_102_444_800.0])
def test_the_first_ten_characters_are_the_milliseconds(now: float) -> None:
    assert decode_crockford(new_id(now)[:10]) == int(now * 1000)


def test_ids_made_at_increasing_times_sort_in_that_order() -> None:
    base = 1_714_000_000.0
    times = [base + step / 1000 for step in range(0, 3000, 7)]  # 7 ms apart
    times += [base + 60, base + 3600, base + 86_400 * 365, base + 86_400 * 365 * 50]
    ids = [new_id(t) for t in times]
    shuffled = ids[:]
    random.shuffle(shuffled)
    assert sorted(shuffled) == ids


def test_ids_one_millisecond_apart_sort_in_order() -> None:
    for _ in range(200):
        assert new_id(1_714_000_000.001) < new_id(1_714_000_000.002)


def test_ids_are_unique_over_many_calls() -> None:
    ids = [new_id() for _ in range(20_000)]
    assert len(set(ids)) == len(ids)


def test_ids_made_in_the_same_millisecond_still_differ() -> None:
    ids = {new_id(1_714_000_000.5) for _ in range(5_000)}
    assert len(ids) == 5_000
