"""Webhook URL rules."""

from __future__ import annotations

import pytest

from postwire_common.errors import InvalidValue
from postwire_notifier.http_client import check_url


@pytest.mark.parametrize(
    "url",
    [
        "http://example.com",
        "https://example.com/hooks/postwire",
        "https://example.com:8443/x?y=1&z=2",
        "HTTPS://Example.com/",
        "http://203.0.113.5:8080/push",
        "http://[2001:db8::1]:8080/push",
        "https://hooks.example.com/" + "a" * 1900,
    ],
)
def test_check_url_accepts_http_and_https(url: str) -> None:
    assert check_url(url) == url


@pytest.mark.parametrize(
    "url",
    [
        "javascript:alert(1)",
        "JavaScript://example.com/%0Aalert(1)",
        "file:///etc/passwd",
        "ftp://example.com/",
        "gopher://example.com:70/_GET",
        "data:text/html,hi",
        "ws://example.com/",
        "//example.com/path",
        "example.com/path",
        "/relative",
        "",
        "http://",
        "http:///path",
        "https://:443/",
    ],
)
def test_check_url_refuses_other_schemes_and_relative_urls(url: str) -> None:
    with pytest.raises(InvalidValue):
        check_url(url)


@pytest.mark.parametrize(
    "url",
    [
        "http://example.com/a b",
        "http://example.com/\x00",
        "http://example.com/\r\nX-Injected: 1",
        "http://example.com/\n",
        "\thttp://example.com/",
        " http://example.com/",
        "http://example.com/\x7f",
    ],
)
def test_check_url_refuses_spaces_and_control_characters(url: str) -> None:
    with pytest.raises(InvalidValue):
        check_url(url)


@pytest.mark.parametrize(
    "url",
    [
        "http://example.com:99999/",
        "http://example.com:-1/",
        "http://example.com:abc/",
        "http://example.com:0/",
        "http://[::1/",  # an unclosed IPv6 literal
        "http://[example.com]/",
    ],
)
def test_check_url_refuses_bad_ports_and_hosts(url: str) -> None:
    with pytest.raises(InvalidValue):
        check_url(url)


def test_check_url_refuses_overlong_urls() -> None:
    with pytest.raises(InvalidValue):
        check_url("https://example.com/" + "a" * 2100)


@pytest.mark.parametrize(
    ("url", "problem"),
    [
        ("https://a..b.example/x", "empty label"),
        ("https://.example/x", "empty label"),
        ("https://example.com../x", "empty label"),
        ("https://" + "a" * 64 + ".example/x", "longer than 63"),
        ("https://b\u00fccher" + "a" * 55 + ".example/x", "IDNA"),  # 61, > 63 encoded
        ("https://" + ("b" * 63 + ".") * 4 + "com/x", "longer than 253"),
        ("https://\u2488.example/x", "IDNA"),  # a character IDNA cannot encode
    ],
)
def test_check_url_refuses_host_names_dns_cannot_carry(url: str, problem: str) -> None:
    with pytest.raises(InvalidValue, match="invalid host name") as caught:
        check_url(url)
    assert problem in str(caught.value)


@pytest.mark.parametrize(
    "url",
    [
        "https://" + "a" * 63 + ".example/x",
        "https://" + ("b" * 62 + ".") * 3 + "b" * 60 + ".com/x",  # 253 characters
        "https://example.com./x",  # rooted
        "https://b\u00fccher.example/x",
        "https://hooks_1.example/x",
    ],
)
def test_check_url_accepts_host_names_at_the_limits(url: str) -> None:
    assert check_url(url) == url
