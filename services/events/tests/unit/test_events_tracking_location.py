"""A click's Location header: only the stored http(s) URL, never a split header."""

from __future__ import annotations

import pytest

from postwire_events.tracking_api import PIXEL, location


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("https://example.org/a?b=c&d=%20#top", "https://example.org/a?b=c&d=%20#top"),
        ("http://example.org:8080/x", "http://example.org:8080/x"),
        ("https://example.org/路径?q=值", "https://example.org/%E8%B7%AF%E5%BE%84?q=%E5%80%BC"),
        ("https://пример.рф/", "https://xn--e1afmkfd.xn--p1ai/"),
        ("https://example.org/\r\nSet-Cookie: a=b", None),
        ("https://example.org/\nx", None),
        ("https://example.org/\x00", None),
        ("https://example.org/a b", None),
        ("javascript:alert(1)", None),
        ("mailto:a@example.org", None),
        ("//example.org/", None),
        ("https:///nohost", None),
    ],
)
def test_location(url: str, expected: str | None) -> None:
    assert location(url) == expected


def test_pixel_is_a_43_byte_gif() -> None:
    assert len(PIXEL) == 43
    assert PIXEL.startswith(b"GIF89a")
