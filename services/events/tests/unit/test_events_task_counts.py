"""What a message adds to its task's counts, and the flusher that coalesces announcements."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

import pytest

from postwire_events.task_counts import Ended, Move, TaskCountsFlusher, deltas, moves


@pytest.mark.parametrize(
    ("status", "counted", "expected"),
    [
        ("delivered", None, (None, "delivered")),
        ("failed", None, (None, "failed")),
        ("invalid", None, (None, "failed")),  # delivery gave up: counts as failed
        ("failed", "delivered", ("delivered", "failed")),  # a bounce after delivery
        ("delivered", "delivered", None),  # a repeat adds nothing
        ("failed", "failed", None),
        ("invalid", "failed", None),
    ],
)
def test_a_message_moves_only_when_what_it_counts_as_changes(
    status: str, counted: str | None, expected: tuple[str | None, str] | None
) -> None:
    found = moves([Ended("E1", "t", "task", status, counted)])
    assert found == ([] if expected is None else [Move("E1", "t", "task", *expected)])


def test_deltas_sum_per_task_in_key_order_and_drop_nothing_changes() -> None:
    found = [
        Move("E1", "t", "b", None, "delivered"),
        Move("E2", "t", "b", "delivered", "failed"),
        Move("E3", "t", "a", None, "failed"),
        Move("E4", "t", "c", "delivered", "failed"),
        Move("E5", "t", "c", None, "delivered"),
    ]
    assert list(deltas(found).items()) == [
        (("t", "a"), (0, 1)),
        (("t", "b"), (0, 1)),
        (("t", "c"), (0, 1)),
    ]
    assert deltas([Move("E1", "t", "a", None, "delivered")]) == {("t", "a"): (1, 0)}
    assert deltas([]) == {}


async def wait_for(condition: Callable[[], bool], seconds: float = 5.0) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        await asyncio.sleep(0.005)


async def test_the_flusher_coalesces_wakes_within_its_interval() -> None:
    flushed: list[float] = []
    announced: list[bool] = []

    async def flush(limit: int) -> int:
        flushed.append(time.monotonic())
        return 1

    flusher = TaskCountsFlusher(flush, lambda: announced.append(True), interval=0.3, idle=60)
    task = asyncio.create_task(flusher.run())
    try:
        flusher.wake()
        await wait_for(lambda: len(flushed) == 1)  # the first change goes at once
        for _ in range(50):  # a burst of changes ...
            flusher.wake()
            await asyncio.sleep(0.001)
        await wait_for(lambda: len(flushed) == 2)  # ... is one more flush, an interval later
        assert flushed[1] - flushed[0] >= 0.3
        assert announced == [True, True]
    finally:
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task


async def run_flusher(
    results: list[int | Exception], *, idle: float, expected_calls: int
) -> list[int]:
    """Run a flusher whose flushes answer ``results`` until it made ``expected_calls``."""
    calls: list[int] = []

    async def flush(limit: int) -> int:
        calls.append(limit)
        result = results.pop(0) if results else 0
        if isinstance(result, Exception):
            raise result
        return result

    flusher = TaskCountsFlusher(flush, lambda: None, interval=0.01, idle=idle, batch=2)
    task = asyncio.create_task(flusher.run())
    try:
        flusher.wake()
        await wait_for(lambda: len(calls) >= expected_calls)
    finally:
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
    return calls


async def test_the_flusher_goes_on_unwoken_while_more_are_pending() -> None:
    # A full batch (2): the rest goes an interval later, without waiting for a wake.
    assert await run_flusher([2, 1], idle=60, expected_calls=2) == [2, 2]


async def test_the_flusher_outlives_a_failure() -> None:
    # The rows stay pending; the next unwoken look (idle) writes them.
    calls = await run_flusher([RuntimeError("database gone"), 1], idle=0.05, expected_calls=2)
    assert calls[:2] == [2, 2]
