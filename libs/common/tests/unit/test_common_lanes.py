"""Lanes over an in-memory queue table: a slow lane holds only its own items, workers per
lane are capped, rows that do not fit are released, a failing item is let go."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass

from postwire_common.lanes import LanePolicy, Lanes
from postwire_testkit.wait import eventually


@dataclass(frozen=True)
class Item:
    key: str
    lane: str


class Table:
    """What a store's claim/renew/release do, without the database."""

    def __init__(self, items: Sequence[Item]) -> None:
        self.free = list(items)
        self.leased: dict[str, Item] = {}
        self.released: list[str] = []
        self.renewed = 0

    async def claim(
        self, owner: str, limit: int, exclude: Sequence[str], lease: float
    ) -> list[Item]:
        taken = [i for i in self.free if i.lane not in exclude][:limit]
        for item in taken:
            self.free.remove(item)
            self.leased[item.key] = item
        return taken

    async def renew(self, owner: str, keys: Sequence[str], lease: float) -> None:
        self.renewed += 1

    async def release(self, owner: str, keys: Sequence[str]) -> None:
        for key in keys:
            self.released.append(key)
            self.free.append(self.leased.pop(key))


async def test_a_stalled_lane_does_not_hold_up_another() -> None:
    items = [Item(f"slow{i}", "slow") for i in range(50)] + [
        Item(f"fast{i}", "fast") for i in range(10)
    ]
    table = Table(items)
    done: list[str] = []
    release_slow = asyncio.Event()
    running = {"slow": 0, "fast": 0}
    peak = {"slow": 0, "fast": 0}

    async def handle(item: Item) -> None:
        running[item.lane] += 1
        peak[item.lane] = max(peak[item.lane], running[item.lane])
        try:
            if item.lane == "slow":
                await release_slow.wait()
            done.append(item.key)
        finally:
            running[item.lane] -= 1

    lanes: Lanes[Item] = Lanes(
        table,
        handle,
        lambda lane: LanePolicy(concurrency=3, depth=6),
        owner="me",
        window=20,
        poll=0.05,
    )
    lanes.start()
    try:
        await eventually(lambda: sum(k.startswith("fast") for k in done) == 10, within=5)
        assert not any(k.startswith("slow") for k in done)
        assert peak["slow"] == 3  # its workers, no more
        assert lanes.lane_sizes().get("slow", 0) <= 6  # its depth, no more
        assert len(table.free) >= 50 - 6  # the rest of the slow lane stays in the table
        release_slow.set()
        await eventually(lambda: len(done) == 60, within=5)
    finally:
        release_slow.set()
        await lanes.stop()


async def test_a_failing_item_is_let_go_for_its_lease_to_run_out() -> None:
    table = Table([Item("bad", "x"), Item("good", "x")])
    done: list[str] = []

    async def handle(item: Item) -> None:
        if item.key == "bad":
            raise RuntimeError("boom")
        done.append(item.key)

    lanes: Lanes[Item] = Lanes(
        table, handle, lambda lane: LanePolicy(1, depth=4), owner="me", poll=0.05
    )
    lanes.start()
    try:
        await eventually(lambda: done == ["good"], within=5)
        assert lanes.held == 0  # not held any more: not renewed, so another claim takes it
    finally:
        await lanes.stop()


async def test_a_rate_spaces_the_items_of_a_lane() -> None:
    table = Table([Item(f"i{n}", "paced") for n in range(5)])
    times: list[float] = []
    loop = asyncio.get_running_loop()

    async def handle(item: Item) -> None:
        times.append(loop.time())

    lanes: Lanes[Item] = Lanes(
        table,
        handle,
        lambda lane: LanePolicy(concurrency=5, rate=20.0, depth=10),
        owner="me",
        poll=0.05,
    )
    lanes.start()
    try:
        await eventually(lambda: len(times) == 5, within=5)
    finally:
        await lanes.stop()
    # 20 per second: 50 ms apart. One late item can make one gap short, not the whole run.
    assert times[-1] - times[0] >= 4 * 0.05 * 0.9


async def test_stopping_releases_what_was_claimed_but_not_started() -> None:
    table = Table([Item(f"i{n}", "x") for n in range(10)])
    gate = asyncio.Event()

    async def handle(item: Item) -> None:
        await gate.wait()

    lanes: Lanes[Item] = Lanes(
        table, handle, lambda lane: LanePolicy(1, depth=10), owner="me", poll=0.05
    )
    lanes.start()
    await eventually(lambda: lanes.held == 10, within=5)
    await lanes.stop(grace=0.1)
    assert len(table.released) == 10  # free for another process at once
