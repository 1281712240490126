from __future__ import annotations

import pytest

from postwire_common import ttl_cache
from postwire_common.ttl_cache import TtlCache


def test_entries_expire_after_ttl(monkeypatch: pytest.MonkeyPatch) -> None:
    now = [100.0]
    monkeypatch.setattr(ttl_cache.time, "monotonic", lambda: now[0])
    cache: TtlCache[str, int] = TtlCache(5.0)
    cache.put("a", 1)
    now[0] = 104.9
    assert cache.get("a") == 1
    now[0] = 105.0
    assert cache.get("a") is None


def test_forget_drops_matching_keys_only() -> None:
    cache: TtlCache[tuple[str, str], int] = TtlCache(60)
    cache.put(("t1", "x"), 1)
    cache.put(("t1", "y"), 2)
    cache.put(("t2", "x"), 3)
    cache.forget(lambda key: key[0] == "t1")
    assert cache.get(("t1", "x")) is None
    assert cache.get(("t1", "y")) is None
    assert cache.get(("t2", "x")) == 3


def test_size_is_bounded() -> None:
    cache: TtlCache[int, int] = TtlCache(60, max_entries=3)
    for i in range(10):
        cache.put(i, i)
    assert cache.get(9) == 9
    assert sum(cache.get(i) is not None for i in range(10)) <= 3
