"""What each event counts, buckets by recv_time, rates, period bounds and CSV cells."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from postwire_common.schemas import EventType, MailEvent
from postwire_events.csv_export import cell, lines
from postwire_events.stats import (
    Counted,
    Granularity,
    bounds,
    counted_as,
    deltas,
    rate,
    report_row,
    sending_row,
)
from postwire_events.store import first_hits, merge_status, merge_tracking

T = datetime(2026, 12, 31, 23, 59, 59, 999999, tzinfo=UTC)


@pytest.mark.parametrize(
    ("event", "status", "machine", "first", "counts"),
    [
        ("request", None, None, False, ["requests"]),
        ("failed", 3, None, False, ["failed", "spam"]),
        ("failed", 2, None, False, ["failed"]),
        ("invalid", 2, None, False, ["invalid"]),
        ("open", None, None, True, ["opens", "unique_opens"]),
        ("open", None, None, False, ["opens"]),
        ("open", None, "privacy_proxy", True, ["machine_opens"]),
        ("click", None, "scanner", False, ["machine_clicks"]),
        ("click", None, None, True, ["clicks", "unique_clicks"]),
        ("spam_report", None, None, False, ["spam_reports"]),
    ],
)
def test_counted_as(
    event: str, status: int | None, machine: str | None, first: bool, counts: list[str]
) -> None:
    assert counted_as(event, status, machine, first) == counts


def test_deltas_bucket_by_utc_hour_and_day_one_row_per_key_in_order() -> None:
    plus8 = timezone(timedelta(hours=8))
    counted = [
        Counted("t", T, "x.org", None, "u", None, None, ("requests",)),
        Counted("t", T.astimezone(plus8), "x.org", None, "u", None, None, ("delivered",)),
        Counted("t", T + timedelta(microseconds=1), "x.org", "l", None, None, None, ("requests",)),
    ]
    hourly, daily = deltas(counted)
    assert [(k[1].hour, k[3], v[:2]) for k, v in hourly] == [(23, "", [1, 1]), (0, "l", [1, 0])]
    assert [k[1] for k, _ in daily] == [
        datetime(2026, 12, 31, tzinfo=UTC),
        datetime(2027, 1, 1, tzinfo=UTC),
    ]
    assert [k for k, _ in hourly] == sorted(k for k, _ in hourly)


def test_rates_are_four_decimals_and_zero_without_requests() -> None:
    assert rate(1, 3) == 0.3333
    assert rate(2, 3) == 0.6667
    assert rate(5, 0) == 0.0
    counts = dict.fromkeys(
        ("requests", "delivered", "soft_bounces", "invalid", "spam", "failed"), 0
    )
    assert sending_row(T, counts)["success_rate"] == 0.0
    counts.update(requests=10, delivered=8, failed=3, invalid=1)  # a bounce after delivery
    assert report_row(T, counts)["to_send"] == 0
    assert report_row(T, counts)["delivery_rate"] == 0.8


def test_bounds_take_whole_periods_and_at_most_a_year() -> None:
    since = datetime(2026, 1, 15, 10, 30, tzinfo=UTC)
    assert bounds(since, since + timedelta(hours=1), Granularity.HOUR) == (
        datetime(2026, 1, 15, 10, tzinfo=UTC), datetime(2026, 1, 15, 12, tzinfo=UTC),
    )  # fmt: skip
    assert bounds(since, datetime(2026, 12, 1, tzinfo=UTC), Granularity.MONTH) == (
        datetime(2026, 1, 1, tzinfo=UTC), datetime(2026, 12, 1, tzinfo=UTC),
    )  # fmt: skip
    assert bounds(since, datetime(2026, 12, 2, tzinfo=UTC), Granularity.MONTH)[1] == datetime(
        2027, 1, 1, tzinfo=UTC
    )
    with pytest.raises(ValueError, match="a year"):
        bounds(since, since + timedelta(days=367), Granularity.DAY)
    with pytest.raises(ValueError, match="after"):
        bounds(since, since, Granularity.DAY)


def test_csv_cells_cannot_be_formulas() -> None:
    assert [cell(v) for v in ("=1+1", "+1", "-1", "@SUM(A1)", "\tx", "ok", None, 3, 0.5)] == [
        "'=1+1", "'+1", "'-1", "'@SUM(A1)", "'\tx", "ok", "", 3, 0.5,
    ]  # fmt: skip
    assert (
        cell(datetime(2026, 1, 1, 8, tzinfo=timezone(timedelta(hours=8)))) == "2026-01-01T00:00:00Z"
    )
    assert lines([["a,b", 'say "hi"']]) == '"a,b","say ""hi"""\r\n'


def _event(env_id: str, kind: EventType, seconds: float, **extra: object) -> MailEvent:
    return MailEvent(
        event_id=f"{env_id}:{kind.value}:{seconds}", event=kind, env_id=env_id,
        msg_id=f"<{env_id}@x>", tenant_id="t", account="a@x.org", sender="a@x.org",
        rcpt="r@y.org", recv_time=T, time=T + timedelta(seconds=seconds), **extra,  # type: ignore[arg-type]
    )  # fmt: skip


def test_the_first_human_open_and_click_of_a_batch() -> None:
    events = [
        _event("A", EventType.OPEN, 5),
        _event("A", EventType.OPEN, 1, machine="privacy_proxy"),
        _event("A", EventType.OPEN, 3),
        _event("B", EventType.CLICK, 2, machine="scanner"),
    ]
    assert first_hits(events) == ({"A": "A:open:3"}, {})


def test_tracking_only_messages_get_rank_zero_rows_and_requests_are_marked() -> None:
    events = [
        _event("A", EventType.REQUEST, 0, api_user="acct.u"),
        _event("A", EventType.OPEN, 9),
        _event("B", EventType.OPEN, 9),
    ]
    (a,) = merge_status(events)
    assert a[17:] == ("acct.u", 1, "A:open:9", None)
    (b,) = merge_tracking(events, {"A"})
    assert (b[0], b[8], b[18], b[19]) == ("B", 0, 0, "B:open:9")
