"""Per-destination lanes over a durable queue table.

Work that goes to an outside destination (an MX, a webhook endpoint) waits in a table of
its owning service, not in a broker's prefetch window, and a process works on it in
lanes, one per destination::

    queue table ──claim (leased, SKIP LOCKED, lanes that are full left out)──▶ lane "a"
                                                                          ──▶ lane "b"
    lane: up to `concurrency` workers, each taking the lane's next item (so a worker
          keeps its connection to the destination warm), at most `rate` items/s
    heartbeat: every lease/3, the leases of every item held are renewed

A lane holds at most ``depth`` items (claimed ahead of its workers); a slow destination
fills its own lane and nothing else, and the items behind it stay in the table where any
replica can take them. Leases are short and renewed while an item is held, so after a
crash its items are free again within one lease. ``handle`` must record the item's
outcome (finish it, or set its next due time) before it returns; an item whose
``handle`` raised is let go and taken again once its lease runs out.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import deque
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Generic, Protocol, TypeVar

log = logging.getLogger("postwire.lanes")


class Item(Protocol):
    @property
    def key(self) -> str: ...

    @property
    def lane(self) -> str: ...


W = TypeVar("W", bound=Item)


class Source(Protocol[W]):
    """The queue table, as the store of the owning service exposes it."""

    async def claim(
        self, owner: str, limit: int, exclude: Sequence[str], lease: float
    ) -> list[W]: ...

    async def renew(self, owner: str, keys: Sequence[str], lease: float) -> None: ...

    async def release(self, owner: str, keys: Sequence[str]) -> None: ...


@dataclass(frozen=True, slots=True)
class LanePolicy:
    concurrency: int = 8  # items of this lane worked on at once
    rate: float = 0.0  # items per second; 0 is unlimited
    depth: int = 64  # items held in memory (running and waiting)


class _Pacer:
    """Spaces items ``1/rate`` seconds apart (a token bucket of one)."""

    def __init__(self, rate: float) -> None:
        self._interval = 1.0 / rate if rate > 0 else 0.0
        self._next = 0.0

    async def wait(self) -> None:
        if not self._interval:
            return
        now = time.monotonic()
        at = max(now, self._next)
        self._next = at + self._interval
        if at > now:
            await asyncio.sleep(at - now)


class _Lane(Generic[W]):
    def __init__(self, policy: LanePolicy) -> None:
        self.policy = policy
        self.waiting: deque[W] = deque()
        self.running = 0  # items being handled
        self.workers = 0
        self.pacer = _Pacer(policy.rate)

    @property
    def held(self) -> int:
        return len(self.waiting) + self.running

    @property
    def full(self) -> bool:
        return self.held >= self.policy.depth


class Lanes(Generic[W]):
    def __init__(
        self,
        source: Source[W],
        handle: Callable[[W], Awaitable[None]],
        policy: Callable[[str], LanePolicy],
        *,
        owner: str,
        window: int = 1000,
        lease: float = 15.0,
        poll: float = 1.0,
        claim_batch: int = 200,
        name: str = "lanes",
        prepare: Callable[[Sequence[W]], None] | None = None,
    ) -> None:
        self._source = source
        self._handle = handle
        self._policy = policy
        self._owner = owner
        self._window = window
        self._lease = lease
        self._poll = poll
        self._claim_batch = claim_batch
        self._name = name
        self._prepare = prepare
        self._lanes: dict[str, _Lane[W]] = {}
        self._held: set[str] = set()
        self._workers: set[asyncio.Task[None]] = set()
        self._wake = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []

    # lifecycle --------------------------------------------------------------------------

    def start(self) -> None:
        self._tasks = [
            asyncio.create_task(self._dispatch(), name=f"{self._name}:dispatch"),
            asyncio.create_task(self._heartbeat(), name=f"{self._name}:heartbeat"),
        ]

    async def stop(self, grace: float = 10.0) -> None:
        """Stop claiming, give running items ``grace`` seconds, then let the rest go."""
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks = []
        for lane in self._lanes.values():
            lane.waiting.clear()  # not started: released below, taken again at once
        if self._workers:
            await asyncio.wait(self._workers, timeout=grace)
        for task in list(self._workers):
            task.cancel()
        with contextlib.suppress(Exception):
            await self._source.release(self._owner, list(self._held))
        self._held.clear()

    def wake(self) -> None:
        self._wake.set()

    @property
    def held(self) -> int:
        return len(self._held)

    def lane_sizes(self) -> dict[str, int]:
        return {key: lane.held for key, lane in self._lanes.items()}

    # claiming ---------------------------------------------------------------------------

    async def _dispatch(self) -> None:
        failures = 0
        while True:
            self._wake.clear()
            try:
                more = await self._claim_once()
                failures = 0
            except Exception as exc:  # the dispatcher outlives any failure (DB down, ...)
                failures += 1
                wait = min(30.0, 0.2 * 2 ** min(failures, 8))
                log.warning(
                    "claiming failed; retrying",
                    extra={"lanes": self._name, "retry_in_s": wait, "error": repr(exc)},
                )
                await asyncio.sleep(wait)
                continue
            if more:
                await asyncio.sleep(0)  # let the workers run between claims
                continue
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self._poll):
                    await self._wake.wait()

    async def _claim_once(self) -> bool:
        """Claim what fits; True if the table may have more that fits right now."""
        room = min(self._window - len(self._held), self._claim_batch)
        if room <= 0:
            return False
        # Lanes at least half full are left out until they drain: claiming for them now
        # would mostly claim items that do not fit and must be released again.
        busy = [key for key, lane in self._lanes.items() if lane.held * 2 >= lane.policy.depth]
        items = await self._source.claim(self._owner, room, busy, self._lease)
        extra: list[str] = []
        for item in items:
            if item.key in self._held:
                continue  # ours already (its lease ran out while we still held it)
            lane = self._lanes.get(item.lane)
            if lane is None:
                lane = self._lanes[item.lane] = _Lane(self._policy(item.lane))
            if lane.full:
                extra.append(item.key)
                continue
            self._held.add(item.key)
            lane.waiting.append(item)
            if lane.workers < lane.policy.concurrency:
                lane.workers += 1
                self._spawn(item.lane, lane)
        if self._prepare is not None and items:
            self._prepare(items)  # e.g. start reading what the items need, all at once
        if extra:
            await self._source.release(self._owner, extra)
        return len(items) == room and not extra

    def _spawn(self, key: str, lane: _Lane[W]) -> None:
        task = asyncio.create_task(self._work(key, lane), name=f"{self._name}:{key}")
        self._workers.add(task)
        task.add_done_callback(self._workers.discard)

    async def _work(self, key: str, lane: _Lane[W]) -> None:
        try:
            while lane.waiting:
                item = lane.waiting.popleft()
                lane.running += 1
                try:
                    await lane.pacer.wait()
                    await self._handle(item)
                except Exception as exc:
                    log.error(
                        "work item failed; it is taken again when its lease runs out",
                        exc_info=exc,
                        extra={"lanes": self._name, "key": item.key, "lane": key},
                    )
                finally:
                    lane.running -= 1
                    self._held.discard(item.key)
                    depth = lane.policy.depth
                    if (lane.held + 1) * 2 >= depth > lane.held * 2 or not lane.held:
                        # The lane just dropped below half full (the point at which
                        # claims take it again) or emptied: time to claim for it. Waking
                        # on every item would make a claim per item that finds nothing.
                        self._wake.set()
        finally:
            lane.workers -= 1
            if lane.workers == 0 and not lane.waiting and self._lanes.get(key) is lane:
                del self._lanes[key]  # idle lanes are forgotten: memory follows the work

    # leases -----------------------------------------------------------------------------

    async def _heartbeat(self) -> None:
        while True:
            await asyncio.sleep(self._lease / 3)
            if not self._held:
                continue
            try:
                await self._source.renew(self._owner, list(self._held), self._lease)
            except Exception as exc:
                log.warning(
                    "renewing leases failed", extra={"lanes": self._name, "error": repr(exc)}
                )
