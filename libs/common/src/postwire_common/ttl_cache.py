"""A small in-process cache whose entries expire, for lookups on every request (API keys,
sender addresses). A change made elsewhere is seen within ``ttl`` seconds; a change made
in this process is seen at once if it calls :meth:`TtlCache.forget`."""

from __future__ import annotations

import time
from collections.abc import Callable, Hashable
from typing import Generic, TypeVar

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")


class TtlCache(Generic[K, V]):
    def __init__(self, ttl: float, *, max_entries: int = 10_000) -> None:
        self._ttl = ttl
        self._max = max_entries
        self._entries: dict[K, tuple[float, V]] = {}

    def get(self, key: K) -> V | None:
        entry = self._entries.get(key)
        if entry is None:
            return None
        if entry[0] <= time.monotonic():
            del self._entries[key]
            return None
        return entry[1]

    def put(self, key: K, value: V) -> None:
        if len(self._entries) >= self._max:
            self._entries.clear()
        self._entries[key] = (time.monotonic() + self._ttl, value)

    def forget(self, match: Callable[[K], bool]) -> None:
        for key in [k for k in self._entries if match(k)]:
            del self._entries[key]
