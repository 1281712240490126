"""Delivered and failed counts of batch sending tasks, kept here and told to ingest.

::

    EventBatch ─▶ record_many, one transaction:
                    status upsert ─▶ task messages whose status is terminal (row locked)
                    ─▶ messages.counted := what each adds ─▶ task_counts += deltas, pending
    TaskCountsFlusher, at most once a second per process:
                    pending task_counts ─▶ one TaskCounts in the outbox ─▶ postwire.tasks ─▶ ingest

What a status counts as (``COUNTED_AS``): delivered as delivered; failed and invalid
(delivery gave up: no such domain, null MX) as failed, so each message ingest queued ends
in exactly one of the two; suppressed is not counted (ingest counted it at accept time).
A message counts once its status is terminal and its task is known, whichever of its
request event (which names the task) and its result arrives first.

``messages.counted`` records what a message adds. It is read and changed only while the
status update holds the message's row lock, so a redelivered, duplicate or concurrent
event finds it already equal and adds nothing. A bounce after delivery (``failed``
outranks ``delivered``, see ``status.py``) finds ``delivered`` and moves the message:
delivered −1, failed +1. The figures ingest gets are absolute, stamped with a time that
grows with every change of the task, so a repeated or late message changes nothing.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass

from postwire_common.broker import topology
from postwire_common.broker.publish import Outgoing
from postwire_common.schemas import TaskCount, TaskCounts

log = logging.getLogger("postwire.events.task_counts")

DELIVERED = "delivered"
FAILED = "failed"
COUNTED_AS: dict[str, str] = {"delivered": DELIVERED, "failed": FAILED, "invalid": FAILED}

FLUSH_INTERVAL = 1.0  # seconds; a task is announced at most once per interval per process
IDLE_INTERVAL = 5.0  # unwoken, look anyway: another process may have left counts pending
FLUSH_BATCH = 500  # tasks per flush, so per TaskCounts message (~150 bytes each)


@dataclass(frozen=True, slots=True)
class Ended:
    """A task's message whose status is terminal, as the status update left it."""

    env_id: str
    tenant_id: str
    task_id: str
    status: str
    counted: str | None  # what it added to its task's counts until now


@dataclass(frozen=True, slots=True)
class Move:
    """A message whose contribution to its task's counts changes."""

    env_id: str
    tenant_id: str
    task_id: str
    was: str | None
    now: str


def moves(ended: Sequence[Ended]) -> list[Move]:
    """The messages of ``ended`` that count differently from what they added so far."""
    return [
        Move(e.env_id, e.tenant_id, e.task_id, e.counted, COUNTED_AS[e.status])
        for e in ended
        if COUNTED_AS[e.status] != e.counted
    ]


def deltas(found: Sequence[Move]) -> dict[tuple[str, str], tuple[int, int]]:
    """(delivered, failed) to add per (tenant, task), in key order (the order rows are
    locked in, the same in every process)."""
    sums: dict[tuple[str, str], list[int]] = {}
    for move in found:
        delta = sums.setdefault((move.tenant_id, move.task_id), [0, 0])
        delta[0 if move.now == DELIVERED else 1] += 1
        if move.was is not None:
            delta[0 if move.was == DELIVERED else 1] -= 1
    return {key: (d[0], d[1]) for key, d in sorted(sums.items()) if d != [0, 0]}


def announce(counts: Sequence[TaskCount]) -> list[Outgoing]:
    """The bus message telling ingest of ``counts`` (written to the outbox)."""
    if not counts:
        return []
    return [
        Outgoing(topology.TASKS.name, topology.TASK_COUNTS_KEY, TaskCounts(counts=list(counts)))
    ]


class TaskCountsFlusher:
    """Writes changed counts to the outbox, at most every ``interval`` seconds: a burst of
    100k results becomes a message per second, not 100k. Woken when counts change; the
    first change after a quiet spell goes at once."""

    def __init__(
        self,
        flush: Callable[[int], Awaitable[int]],
        announced: Callable[[], None],
        *,
        interval: float = FLUSH_INTERVAL,
        idle: float = IDLE_INTERVAL,
        batch: int = FLUSH_BATCH,
    ) -> None:
        self._flush = flush  # writes up to n pending tasks' counts; how many it wrote
        self._announced = announced  # wakes the outbox relay
        self._interval = interval
        self._idle = idle
        self._batch = batch
        self._wake = asyncio.Event()

    def wake(self) -> None:
        self._wake.set()

    async def run(self) -> None:
        while True:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self._idle):
                    await self._wake.wait()
            self._wake.clear()
            try:
                flushed = await self._flush(self._batch)
            except Exception as exc:  # the rows stay pending; the next round retries
                log.warning("task counts flush failed", exc_info=exc)
                flushed = 0
            if flushed:
                self._announced()
            if flushed >= self._batch:
                self._wake.set()  # more are pending
            await asyncio.sleep(self._interval)
