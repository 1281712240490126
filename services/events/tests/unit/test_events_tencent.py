"""Our statuses and counters in Tencent SES's terms (GetSendEmailStatus, GetStatisticsReport)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from postwire_common.vendors.tencent import TencentError
from postwire_events.stats import COUNTERS
from postwire_events.status import STATUSES
from postwire_events.vendors.tencent import DELIVER_STATUS, day, volume


def test_every_status_of_ours_has_a_deliver_status() -> None:
    assert set(DELIVER_STATUS) == set(STATUSES)
    assert DELIVER_STATUS["delivered"] == 1
    assert DELIVER_STATUS["failed"] == 3
    assert DELIVER_STATUS["soft_bounced"] == 8


def test_a_volume_reads_our_counters() -> None:
    counts = dict.fromkeys(COUNTERS, 0) | {
        "requests": 10, "invalid": 2, "delivered": 6, "failed": 1, "opens": 7,
        "unique_opens": 3, "clicks": 5, "unique_clicks": 2, "unsubscribes": 1,
    }  # fmt: skip
    assert volume("2026-12-01", counts) == {
        "SendDate": "2026-12-01",
        "RequestCount": 10,
        "AcceptedCount": 8,
        "DeliveredCount": 6,
        "OpenedCount": 7,
        "ClickedCount": 2,
        "BounceCount": 1,
        "UnsubscribeCount": 1,
    }


def test_dates_are_utc_days_or_wrong_date() -> None:
    assert day("2026-12-01", "RequestDate") == datetime(2026, 12, 1, tzinfo=UTC)
    for bad in ("2026-13-01", "20261201", "yesterday"):
        with pytest.raises(TencentError) as raised:
            day(bad, "RequestDate")
        assert raised.value.code == "InvalidParameterValue.WrongDate"
