"""Devices named from real user agents (SendCloud's open/click list shows them)."""

from __future__ import annotations

import pytest

from postwire_events.devices import device

GMAIL_PROXY = "Mozilla/5.0 (Windows NT 5.1; rv:11.0) Gecko Firefox/11.0 (via ggpht.com "
GMAIL_PROXY += "GoogleImageProxy)"


@pytest.mark.parametrize(
    ("agent", "expected"),
    [
        ("Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15", "iPhone"),
        ("Mozilla/5.0 (iPad; CPU OS 16_6 like Mac OS X) AppleWebKit/605.1.15", "iPad"),
        ("Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 Chrome/126.0", "Android"),
        ("Mozilla/5.0 (Windows NT 10.0; Win64; x64) Microsoft Outlook 16.0", "Windows"),
        ("Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15", "Mac"),
        ("Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Thunderbird/128.0", "Linux"),
        ("Mozilla/5.0 (X11; CrOS x86_64 14541.0.0) AppleWebKit/537.36", "ChromeOS"),
        (GMAIL_PROXY, "Windows"),
        ("Mozilla/5.0", None),
        ("curl/8.5.0", None),
        (None, None),
    ],
)
def test_the_platform_a_person_would_name(agent: str | None, expected: str | None) -> None:
    assert device(agent) == expected
