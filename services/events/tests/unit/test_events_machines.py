"""Machine opens and clicks told from people's (machines.py)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from postwire_events.machines import SCANNER_WINDOW, Machine, classify

DELIVERED = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
LATER = DELIVERED + timedelta(minutes=5)
CHROME = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/131.0.0.0 Safari/537.36"
)
GMAIL = "Mozilla/5.0 (Windows NT 5.1; rv:11.0) Gecko Firefox/11.0 (via ggpht.com GoogleImageProxy)"


@pytest.mark.parametrize(
    ("is_open", "method", "ip", "agent", "expected"),
    [
        # people
        (True, "GET", "203.0.113.7", CHROME, None),
        (False, "GET", "203.0.113.7", CHROME, None),
        (True, "GET", "66.249.84.1", GMAIL, None),  # Gmail fetches when the user opens
        (True, "GET", "not an address", None, None),
        (False, "GET", "17.58.1.2", CHROME, None),  # Apple's network clicking: a person
        # Apple Mail Privacy Protection, Yahoo's image proxy
        (True, "GET", "17.58.1.2", "Mozilla/5.0", Machine.PRIVACY_PROXY),
        (True, "GET", "::ffff:17.58.1.2", CHROME, Machine.PRIVACY_PROXY),
        (True, "GET", "198.51.100.1", "Mozilla/5.0", Machine.PRIVACY_PROXY),
        (
            True,
            "GET",
            "198.51.100.1",
            "YahooMailProxy; https://help.yahoo.com",
            Machine.PRIVACY_PROXY,
        ),
        # security scanners and scripts
        (False, "GET", "198.51.100.1", "Barracuda Sentinel (EE)", Machine.SCANNER),
        (False, "GET", "198.51.100.1", "Mozilla/5.0 Mimecast", Machine.SCANNER),
        (True, "GET", "198.51.100.1", "Proofpoint URL Defense", Machine.SCANNER),
        (False, "GET", "198.51.100.1", "Google-Safety", Machine.SCANNER),
        (False, "GET", "198.51.100.1", "python-requests/2.32", Machine.SCANNER),
        (False, "GET", "198.51.100.1", "Mozilla/5.0 HeadlessChrome/120.0", Machine.SCANNER),
        (False, "HEAD", "203.0.113.7", CHROME, Machine.SCANNER),
        (True, "HEAD", "203.0.113.7", CHROME, Machine.SCANNER),
    ],
)
def test_classify_by_address_agent_and_method(
    is_open: bool, method: str, ip: str, agent: str | None, expected: Machine | None
) -> None:
    found = classify(
        is_open=is_open, method=method, ip=ip, user_agent=agent, at=LATER, delivered_at=DELIVERED
    )
    assert found == expected


@pytest.mark.parametrize(
    ("after", "delivered", "expected"),
    [
        (timedelta(seconds=2), True, Machine.SCANNER),
        (SCANNER_WINDOW - timedelta(milliseconds=1), True, Machine.SCANNER),
        (SCANNER_WINDOW, True, None),
        (timedelta(seconds=2), False, None),  # not known to be delivered: no window
        (-timedelta(seconds=2), True, None),  # clocks: a hit before delivery is not judged
    ],
)
def test_hits_right_after_delivery_are_scanners(
    after: timedelta, delivered: bool, expected: Machine | None
) -> None:
    found = classify(
        is_open=False,
        method="GET",
        ip="203.0.113.7",
        user_agent=CHROME,
        at=DELIVERED + after,
        delivered_at=DELIVERED if delivered else None,
    )
    assert found == expected
