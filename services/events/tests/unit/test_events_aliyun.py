"""Aliyun DirectMail's statistics shapes."""

from __future__ import annotations

from datetime import UTC, datetime

from postwire_events.stats import COUNTERS
from postwire_events.vendors.aliyun import stat_row


def test_a_day_in_aliyuns_shape() -> None:
    counts = dict.fromkeys(COUNTERS, 0) | {
        "requests": 8, "delivered": 5, "failed": 1, "spam": 1, "invalid": 1
    }  # fmt: skip
    assert stat_row(datetime(2026, 12, 1, tzinfo=UTC), counts) == {
        "CreateTime": "2026-12-01",
        "requestCount": "8",
        "successCount": "5",
        "faildCount": "2",
        "unavailableCount": "1",
        "succeededPercent": "62.50%",
        "unavailablePercent": "12.50%",
    }


def test_no_requests_is_zero_percent() -> None:
    row = stat_row(datetime(2026, 12, 1, tzinfo=UTC), dict.fromkeys(COUNTERS, 0))
    assert (row["succeededPercent"], row["unavailablePercent"]) == ("0.00%", "0.00%")
