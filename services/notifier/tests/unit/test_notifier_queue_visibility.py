"""What becomes of a copy taken from an account queue, by its receipt header, its
message's receipt row, tombstone and age."""

from __future__ import annotations

import pytest

from postwire_notifier.queue_visibility import Fate, fate


@pytest.mark.parametrize(
    ("header", "current", "wait_ms", "tombstoned", "expired", "expected"),
    [
        # never received: no row, no header
        (None, None, 0, False, False, Fate.LIVE),
        (None, None, 0, False, True, Fate.EXPIRED),
        # back after its visibility timeout, or made visible at once (vt = 0)
        ("r1", "r1", 0, False, False, Fate.LIVE),
        ("r1", "r1", -5, False, False, Fate.LIVE),
        # back before the time its (extended) visibility asks
        ("r1", "r1", 1500, False, False, Fate.HIDDEN),
        # an older copy of a message whose visibility changed: dropped, never counted
        ("r1", "r2", 0, False, False, Fate.SUPERSEDED),
        ("r1", "r2", 1500, False, True, Fate.SUPERSEDED),
        ("r1", "r2", 0, True, False, Fate.SUPERSEDED),
        # deleted by handle: dropped, not counted, even when hidden or past retention
        ("r1", "r1", 1500, True, False, Fate.DELETED),
        ("r1", "r1", 0, True, True, Fate.DELETED),
        # past retention wins over an extended visibility
        ("r1", "r1", 1500, False, True, Fate.EXPIRED),
        # a copy made before receipts were carried counts as its message's current one
        (None, "r1", 1500, False, False, Fate.HIDDEN),
        (None, "r1", 0, False, False, Fate.LIVE),
        # a receipt row cleaned up (purged): the copy is judged without it
        ("r1", None, 0, False, False, Fate.LIVE),
    ],
)
def test_fate(
    header: str | None,
    current: str | None,
    wait_ms: int,
    tombstoned: bool,
    expired: bool,
    expected: Fate,
) -> None:
    assert fate(header, current, wait_ms, tombstoned=tombstoned, expired=expired) is expected
