"""The unsubscribe pages: the reader's language, escaping, the headers."""

from __future__ import annotations

import pytest

from postwire_events import tracking_pages as pages


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        (None, "en"),
        ("", "en"),
        ("zh-CN,zh;q=0.9,en;q=0.8", "zh"),
        ("zh-Hant-TW", "zh"),
        ("ZH", "zh"),
        ("ru-RU,ru;q=0.9,en-US;q=0.8", "ru"),
        ("en-US,en;q=0.9,zh;q=0.8", "en"),
        ("de-DE,de;q=0.9", "en"),  # none of ours: English
        ("de-DE,zh;q=0.5,ru;q=0.7", "ru"),  # by quality, not by position
        ("zh;q=0, ru", "ru"),  # q=0 means "not this"
        ("zh;q=abc,ru;q=0.1", "ru"),
        ("fr, zh ; q=0.8", "zh"),
        ("*", "en"),
    ],
)
def test_language_from_accept_language(header: str | None, expected: str) -> None:
    assert pages.language(header) == expected


def test_every_language_has_every_text() -> None:
    assert set(pages.TEXTS) == set(pages.LANGUAGES)


def test_confirmation_escapes_and_posts_to_itself() -> None:
    response = pages.confirm("en", '"><script>x</script>@example.org', "a&b@example.com")
    body = bytes(response.body).decode()
    assert "<script>x" not in body
    assert "&quot;&gt;&lt;script&gt;x&lt;/script&gt;@example.org" in body
    assert "a&amp;b@example.com" in body
    assert '<form method="post">' in body
    assert response.headers["X-Frame-Options"] == "DENY"
    assert response.headers["Referrer-Policy"] == "no-referrer"
    assert "default-src 'none'" in response.headers["Content-Security-Policy"]


def test_pages_in_chinese_and_russian() -> None:
    assert "退订" in bytes(pages.confirm("zh", "r@x.cn", "s@x.cn").body).decode()
    assert "Отписаться" in bytes(pages.confirm("ru", "r@x.ru", "s@x.ru").body).decode()
    assert pages.unknown("zh").status_code == 404
    assert pages.failed("en").headers["Retry-After"] == "60"
