"""The client address behind trusted proxies: read from the right of X-Forwarded-For,
never beyond the first hop that is not a trusted proxy."""

from __future__ import annotations

import pytest

from postwire_common.config import Settings
from postwire_common.http.client_address import client_address, networks

GATEWAY = networks(["10.0.0.0/8"])


@pytest.mark.parametrize(
    ("peer", "header", "trusted", "expected"),
    [
        ("203.0.113.7", "198.51.100.1", [], "203.0.113.7"),  # nothing trusted: the peer
        ("203.0.113.7", "198.51.100.1", GATEWAY, "203.0.113.7"),  # peer is no proxy
        ("10.0.0.5", "198.51.100.1", GATEWAY, "198.51.100.1"),
        ("10.0.0.5", "1.2.3.4, 198.51.100.1", GATEWAY, "198.51.100.1"),  # spoofed left part
        ("10.0.0.5", "198.51.100.1, 10.0.0.9", GATEWAY, "198.51.100.1"),  # two proxies
        ("10.0.0.5", "10.0.0.8, 10.0.0.9", GATEWAY, "10.0.0.8"),  # all proxies: the last
        ("10.0.0.5", "not-an-ip", GATEWAY, "10.0.0.5"),
        ("10.0.0.5", None, GATEWAY, "10.0.0.5"),
        ("10.0.0.5", " 2001:db8::1 ", GATEWAY, "2001:db8::1"),
        (None, "198.51.100.1", GATEWAY, None),
    ],
)
def test_the_client_is_the_first_untrusted_hop_from_the_right(
    peer: str | None, header: str | None, trusted: list[object], expected: str | None
) -> None:
    assert client_address(peer, header, trusted) == expected  # type: ignore[arg-type]


def test_the_setting_takes_addresses_and_ranges_and_refuses_garbage() -> None:
    settings = Settings(trusted_proxies="10.0.0.0/8, 192.0.2.1")  # type: ignore[arg-type]
    assert settings.trusted_proxies == ["10.0.0.0/8", "192.0.2.1"]
    with pytest.raises(ValueError, match="POSTWIRE_TRUSTED_PROXIES"):
        Settings(trusted_proxies="10.0.0.0/33")  # type: ignore[arg-type]
