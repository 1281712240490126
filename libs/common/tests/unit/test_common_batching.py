"""Group commit: concurrent submissions share one flush; each gets its own result."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

import pytest

from postwire_common.batching import Batcher


async def test_concurrent_submissions_share_one_flush() -> None:
    calls: list[list[int]] = []

    async def flush(items: Sequence[int]) -> list[int]:
        calls.append(list(items))
        return [i * 10 for i in items]

    batcher: Batcher[int, int] = Batcher(flush, max_size=100, max_wait=0.01)
    results = await asyncio.gather(*(batcher.submit(i) for i in range(5)))
    assert results == [0, 10, 20, 30, 40]
    assert calls == [[0, 1, 2, 3, 4]]


async def test_batches_never_exceed_max_size() -> None:
    sizes: list[int] = []

    async def flush(items: Sequence[int]) -> list[int]:
        sizes.append(len(items))
        await asyncio.sleep(0)
        return list(items)

    batcher: Batcher[int, int] = Batcher(flush, max_size=3, max_wait=0.01)
    results = await asyncio.gather(*(batcher.submit(i) for i in range(8)))
    assert results == list(range(8))
    assert max(sizes) <= 3
    assert sum(sizes) == 8


async def test_items_arriving_during_a_flush_go_in_the_next_one() -> None:
    calls: list[list[str]] = []
    release = asyncio.Event()

    async def flush(items: Sequence[str]) -> list[str]:
        calls.append(list(items))
        if len(calls) == 1:
            await release.wait()
        return [s.upper() for s in items]

    batcher: Batcher[str, str] = Batcher(flush, max_size=10, max_wait=0.001)
    first = asyncio.create_task(batcher.submit("a"))
    await asyncio.sleep(0.01)  # the first flush is in flight
    later = [asyncio.create_task(batcher.submit(s)) for s in "bcd"]
    await asyncio.sleep(0.01)
    release.set()
    assert await first == "A"
    assert [await t for t in later] == ["B", "C", "D"]
    assert calls == [["a"], ["b", "c", "d"]]


async def test_a_failed_flush_fails_every_submitter_of_that_batch() -> None:
    async def flush(items: Sequence[int]) -> list[int]:
        raise ConnectionError("database went away")

    batcher: Batcher[int, int] = Batcher(flush, max_wait=0.001)
    results = await asyncio.gather(*(batcher.submit(i) for i in range(3)), return_exceptions=True)
    assert all(isinstance(r, ConnectionError) for r in results)


async def test_it_recovers_after_a_failed_flush() -> None:
    failures = [True]

    async def flush(items: Sequence[int]) -> list[int]:
        if failures.pop() if failures else False:
            raise ConnectionError("once")
        return list(items)

    batcher: Batcher[int, int] = Batcher(flush, max_wait=0.001)
    with pytest.raises(ConnectionError):
        await batcher.submit(1)
    assert await batcher.submit(2) == 2
