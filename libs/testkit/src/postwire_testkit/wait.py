"""Waiting on events with a deadline (never a bare sleep)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

T = TypeVar("T")


async def eventually(
    check: Callable[[], Awaitable[T | None] | T | None],
    *,
    within: float = 20.0,
    interval: float = 0.1,
    what: str = "condition",
) -> T:
    """Call ``check`` until it returns a truthy value; that value, or TimeoutError."""
    deadline = time.monotonic() + within
    last: T | None = None
    while True:
        result = check()
        last = await result if isinstance(result, Awaitable) else result
        if last:
            return last
        if time.monotonic() >= deadline:
            raise TimeoutError(f"{what} not met within {within:g}s (last: {last!r})")
        await asyncio.sleep(interval)
