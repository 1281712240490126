"""Group commit: many concurrent handlers, one database statement.

A consumer works on up to its prefetch count of messages at once; when each writes its
own row, the process spends its time on round trips. A :class:`Batcher` collects what
the handlers submit while one write is in flight, writes it with one call of ``flush``,
and gives each handler its own result. Under load batches fill by themselves while the
previous write runs; an idle system writes at once (``max_wait`` can add a wait for more
to arrive, at the cost of that much latency).

If ``flush`` raises, every handler in that batch gets the exception (its message is
then requeued like any other failure), so nothing is acknowledged that was not written.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable, Sequence
from typing import Generic, TypeVar

T = TypeVar("T")
R = TypeVar("R")


class Batcher(Generic[T, R]):
    def __init__(
        self,
        flush: Callable[[Sequence[T]], Awaitable[Sequence[R]]],
        *,
        max_size: int = 500,
        max_wait: float = 0.0,
    ) -> None:
        self._flush = flush
        self._max_size = max_size
        self._max_wait = max_wait
        self._pending: list[tuple[T, asyncio.Future[R]]] = []
        self._full = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    async def submit(self, item: T) -> R:
        future: asyncio.Future[R] = asyncio.get_running_loop().create_future()
        self._pending.append((item, future))
        if len(self._pending) >= self._max_size:
            self._full.set()
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self._drain())
        return await future

    async def _drain(self) -> None:
        while self._pending:
            if len(self._pending) < self._max_size:
                if self._max_wait:
                    with contextlib.suppress(TimeoutError):
                        async with asyncio.timeout(self._max_wait):
                            await self._full.wait()
                else:
                    await asyncio.sleep(0)  # let submitters of this loop iteration join
            batch, self._pending = self._pending[: self._max_size], self._pending[self._max_size :]
            self._full.clear()
            live = [(item, future) for item, future in batch if not future.cancelled()]
            if not live:
                continue
            try:
                results = await self._flush([item for item, _ in live])
            except BaseException as exc:  # every submitter sees the failure
                error = exc if isinstance(exc, Exception) else RuntimeError("batch cancelled")
                for _, future in live:
                    if not future.done():
                        future.set_exception(error)
                if not isinstance(exc, Exception):
                    raise
                continue
            for (_, future), result in zip(live, results, strict=True):
                if not future.done():
                    future.set_result(result)
