"""Settings and the parsers behind them (API.md, "Configuration")."""

from __future__ import annotations

import os
import socket

import pytest
from pydantic import SecretStr, ValidationError

from postwire_common.config import (
    Settings,
    parse_duration,
    parse_schedule,
    redact,
    split_host_port,
)


@pytest.fixture
def env(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    """A clean environment: no POSTWIRE_* variable from the machine leaks in."""
    for name in list(os.environ):
        if name.upper().startswith("POSTWIRE_"):
            monkeypatch.delenv(name)
    return monkeypatch


def settings() -> Settings:
    return Settings(_env_file=None)


# -- parse_duration -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("90", 90.0),
        ("0.5", 0.5),
        ("0", 0.0),
        ("30s", 30.0),
        ("5m", 300.0),
        ("2h", 7200.0),
        ("30d", 2592000.0),
        ("50ms", 0.05),
        ("1.5m", 90.0),
        (" 5m ", 300.0),
        (2, 2.0),
        (0.25, 0.25),
    ],
)
def test_parse_duration_accepts_seconds_minutes_hours(text: str | float, seconds: float) -> None:
    assert parse_duration(text) == pytest.approx(seconds)


@pytest.mark.parametrize(
    "text",
    [
        "",
        "   ",
        "abc",
        "m",
        "5w",
        "5us",
        "-1",
        "-5m",
        "1e3",
        "5 minutes",
        "1h30m",
        "1,5m",
        -1,
        -0.5,
    ],
)
def test_parse_duration_refuses_junk_and_negatives(text: str | float) -> None:
    with pytest.raises(ValueError):  # noqa: PT011 - pydantic turns it into a settings error
        parse_duration(text)


# -- parse_schedule -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("1m,5m,15m", [60.0, 300.0, 900.0]),
        ("1s,2s", [1.0, 2.0]),
        ("0.5, 1m ,2h", [0.5, 60.0, 7200.0]),
        ("30s", [30.0]),
        ("", []),
        ("  ", []),
        (["1s", 2], [1.0, 2.0]),
    ],
)
def test_parse_schedule(text: object, seconds: list[float]) -> None:
    assert parse_schedule(text) == pytest.approx(seconds)


@pytest.mark.parametrize("text", ["1m,soon", "1m,-5s", "1m;5m", 5])
def test_parse_schedule_refuses_bad_entries(text: object) -> None:
    with pytest.raises(ValueError):  # noqa: PT011
        parse_schedule(text)


# -- defaults (API.md's configuration table) -----------------------------------------


@pytest.mark.parametrize(
    ("field", "expected"),
    [
        ("database_url", "postgresql://postgres@127.0.0.1:5432/postwire"),
        ("broker_url", "amqp://guest:guest@127.0.0.1:5672/"),
        ("admin_token", None),
        ("region", "local"),
        ("http_host", "127.0.0.1"),
        ("http_port", 8080),
        ("public_url", "http://127.0.0.1:8080"),
        ("smtp_port", 587),
        ("smtps_port", 465),
        ("smtp_tls_cert", None),
        ("smtp_tls_key", None),
        ("smtp_auth_require_tls", True),
        ("smtp_timeout", 60.0),
        ("smtp_connections_per_ip", 50),
        ("dns_nameservers", []),
        ("delivery_port", 25),
        ("delivery_relay", ""),
        ("bounce_domain", ""),
        ("inbound_port", 25),
        ("soft_bounce_schedule", [60, 300, 900, 1800, 3600, 7200, 14400, 28800, 57600]),
        ("webhook_retry_schedule", [180, 600, 1800, 3600, 21600, 43200, 86400]),
        ("webhook_timeout", 3.0),
        ("allow_private_targets", False),
        ("allow_private_webhooks", False),
    ],
)
def test_defaults_match_api_md(env: pytest.MonkeyPatch, field: str, expected: object) -> None:
    value = getattr(settings(), field)
    if isinstance(value, SecretStr):
        value = value.get_secret_value()
    assert value == expected


@pytest.mark.parametrize(
    "field", ["database_url", "broker_url", "admin_token", "secret_keys", "smtp_tls_key"]
)
def test_urls_tokens_and_keys_are_secret(env: pytest.MonkeyPatch, field: str) -> None:
    env.setenv(f"POSTWIRE_{field.upper()}", "amqp://u:hunter2hunter2@h/?password=hunter2")
    if field == "secret_keys":
        env.setenv("POSTWIRE_SECRET_KEYS", "pD1d0f8Xb3k1Xo8nq5r3x2Q9c5Jg7nY3uKx0n2Q4m1E=")
    loaded = settings()
    assert isinstance(getattr(loaded, field), SecretStr)
    assert "hunter2" not in repr(loaded)
    assert "pD1d0f8" not in repr(loaded)


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("postgresql://u:pw@h:5432/db", "postgresql://u:***@h:5432/db"),
        (
            "postgresql://u@h/db?password=pw&sslmode=require",
            "postgresql://u@h/db?password=***&sslmode=require",
        ),
        (
            "postgresql://u:p%40w@h1,h2/db?sslpassword=pw",
            "postgresql://u:***@h1,h2/db?sslpassword=***",
        ),
        ("amqp://guest:guest@127.0.0.1:5672/", "amqp://guest:***@127.0.0.1:5672/"),
        ("amqp://h/vhost?auth_token=pw", "amqp://h/vhost?auth_token=***"),
        ("postgresql://u@h/db", "postgresql://u@h/db"),
        ("host=h password=pw", "(hidden)"),
    ],
)
def test_redact_hides_passwords_in_userinfo_and_query(url: str, shown: str) -> None:
    assert redact(url) == shown


def test_secret_keys_must_be_fernet_keys(env: pytest.MonkeyPatch) -> None:
    env.setenv("POSTWIRE_SECRET_KEYS", "not-a-key")
    with pytest.raises(ValidationError, match="not a Fernet key"):
        settings()


@pytest.mark.parametrize("value", ["development", "production"])
def test_env_is_development_or_production(env: pytest.MonkeyPatch, value: str) -> None:
    env.setenv("POSTWIRE_ENV", value)
    assert settings().env == value


def test_env_defaults_to_development_and_refuses_others(env: pytest.MonkeyPatch) -> None:
    assert settings().env == "development"
    env.setenv("POSTWIRE_ENV", "staging")
    with pytest.raises(ValidationError):
        settings()


def test_default_helo_name_is_the_machines_fqdn(env: pytest.MonkeyPatch) -> None:
    assert settings().helo_name == socket.getfqdn()


def test_no_relay_by_default(env: pytest.MonkeyPatch) -> None:
    assert settings().relay is None


# -- values from the environment -----------------------------------------------------


@pytest.mark.parametrize(
    ("variable", "value", "field", "expected"),
    [
        ("POSTWIRE_SOFT_BOUNCE_SCHEDULE", "1s,2s", "soft_bounce_schedule", [1.0, 2.0]),
        ("POSTWIRE_SOFT_BOUNCE_SCHEDULE", "", "soft_bounce_schedule", []),
        ("POSTWIRE_WEBHOOK_RETRY_SCHEDULE", "0.5,1", "webhook_retry_schedule", [0.5, 1.0]),
        ("POSTWIRE_WEBHOOK_RETRY_SCHEDULE", "", "webhook_retry_schedule", []),
        ("POSTWIRE_WEBHOOK_TIMEOUT", "0.5", "webhook_timeout", 0.5),
        ("POSTWIRE_WEBHOOK_TIMEOUT", "2m", "webhook_timeout", 120.0),
        (
            "POSTWIRE_DNS_NAMESERVERS",
            "127.0.0.1:5353,10.0.0.1",
            "dns_nameservers",
            ["127.0.0.1:5353", "10.0.0.1"],
        ),
        ("POSTWIRE_DNS_NAMESERVERS", " [::1]:5353 , ", "dns_nameservers", ["[::1]:5353"]),
        ("POSTWIRE_SMTP_AUTH_REQUIRE_TLS", "false", "smtp_auth_require_tls", False),
        ("POSTWIRE_ALLOW_PRIVATE_TARGETS", "true", "allow_private_targets", True),
        ("POSTWIRE_ALLOW_PRIVATE_WEBHOOKS", "true", "allow_private_webhooks", True),
        ("POSTWIRE_SMTP_PORT", "0", "smtp_port", 0),
        ("POSTWIRE_INBOUND_PORT", "0", "inbound_port", 0),
        ("POSTWIRE_REGION", "eu-1", "region", "eu-1"),
        ("POSTWIRE_DELIVERY_PORT", "2525", "delivery_port", 2525),
    ],
)
def test_values_from_environment(
    env: pytest.MonkeyPatch, variable: str, value: str, field: str, expected: object
) -> None:
    env.setenv(variable, value)
    assert getattr(settings(), field) == expected


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("POSTWIRE_SOFT_BOUNCE_SCHEDULE", "1m,later"),
        ("POSTWIRE_WEBHOOK_RETRY_SCHEDULE", "-3m"),
        ("POSTWIRE_WEBHOOK_TIMEOUT", "fast"),
        ("POSTWIRE_DNS_NAMESERVERS", "10.0.0.1:99999"),
        ("POSTWIRE_DNS_NAMESERVERS", "10.0.0.1:dns"),
        ("POSTWIRE_HTTP_PORT", "70000"),
    ],
)
def test_bad_values_from_environment_are_refused(
    env: pytest.MonkeyPatch, variable: str, value: str
) -> None:
    env.setenv(variable, value)
    with pytest.raises(ValidationError):
        settings()


@pytest.mark.parametrize("token", ["short", "x" * 15])
def test_short_admin_token_is_refused(env: pytest.MonkeyPatch, token: str) -> None:
    env.setenv("POSTWIRE_ADMIN_TOKEN", token)
    with pytest.raises(ValidationError, match="ADMIN_TOKEN"):
        settings()


def test_admin_token_of_16_chars_is_kept_secret(env: pytest.MonkeyPatch) -> None:
    token = "s3cret-token-0123"
    env.setenv("POSTWIRE_ADMIN_TOKEN", token)
    loaded = settings()
    assert loaded.admin_token is not None
    assert loaded.admin_token.get_secret_value() == token
    assert token not in repr(loaded)
    assert token not in str(loaded)


@pytest.mark.parametrize(
    ("relay", "expected"),
    [
        ("127.0.0.1:1025", ("127.0.0.1", 1025)),
        ("smtp.example.org:587", ("smtp.example.org", 587)),
        ("[::1]:2525", ("::1", 2525)),
    ],
)
def test_relay_from_environment(
    env: pytest.MonkeyPatch, relay: str, expected: tuple[str, int]
) -> None:
    env.setenv("POSTWIRE_DELIVERY_RELAY", relay)
    assert settings().relay == expected


@pytest.mark.parametrize(
    "relay",
    [
        "smtp.example.org",  # no port
        "::1",  # bare IPv6, no port
        "smtp example.org:25",
        "smtp.example.org:25:25",
        "smtp.example.org:",
        "http://smtp.example.org:25",
        "127.0.0.1:99999",  # port out of range
        "127.0.0.1:0",
    ],
)
def test_malformed_relay_is_refused_at_start(env: pytest.MonkeyPatch, relay: str) -> None:
    env.setenv("POSTWIRE_DELIVERY_RELAY", relay)
    with pytest.raises(ValidationError):
        settings()


# -- split_host_port ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("1.2.3.4:53", ("1.2.3.4", 53)),
        ("1.2.3.4", ("1.2.3.4", 1053)),
        ("dns.example.org:5353", ("dns.example.org", 5353)),
        ("dns.example.org", ("dns.example.org", 1053)),
        (" 10.0.0.1:53 ", ("10.0.0.1", 53)),
        ("[::1]:5353", ("::1", 5353)),
        ("[::1]", ("::1", 1053)),
        ("::1", ("::1", 1053)),
        ("2001:db8::53", ("2001:db8::53", 1053)),
        ("[2001:db8::53]:53", ("2001:db8::53", 53)),
        ("1.2.3.4:65535", ("1.2.3.4", 65535)),
    ],
)
def test_split_host_port(text: str, expected: tuple[str, int]) -> None:
    assert split_host_port(text, default_port=1053) == expected


@pytest.mark.parametrize(
    "text",
    ["", ":53", "[]:53", "h:0", "h:65536", "h:abc", "h:", "[::1]:", "[::1]:99999", "[::1]x"],
)
def test_split_host_port_refuses_malformed(text: str) -> None:
    with pytest.raises(ValueError):  # noqa: PT011
        split_host_port(text, default_port=53)
