"""Settings every service reads from ``POSTWIRE_*`` environment variables (and ``.env``).

The names in API.md's configuration table are part of the public contract; the extra ones
here are ours. Each service may extend :class:`Settings` with fields only it reads, but
most are shared because ``postwire run all`` runs every service on one set.
"""

from __future__ import annotations

import ipaddress
import re
import socket
from typing import Annotated, Any, Literal
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

_DURATION = re.compile(r"\s*([0-9]+(?:\.[0-9]+)?)\s*(ms|[smhd]?)\s*")
_UNIT_SECONDS = {"": 1.0, "ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}


def parse_duration(value: str | float) -> float:
    """``"90"``, ``"0.5"``, ``"50ms"``, ``"30s"``, ``"5m"``, ``"2h"``, ``"30d"`` -> seconds."""
    if isinstance(value, int | float):
        seconds = float(value)
    else:
        match = _DURATION.fullmatch(value)
        if not match:
            raise ValueError(
                f"{value!r} is not a duration (use e.g. 50ms, 30s, 5m, 2h, 30d or 0.5)"
            )
        seconds = float(match.group(1)) * _UNIT_SECONDS[match.group(2)]
    if seconds < 0:
        raise ValueError("a duration cannot be negative")
    return seconds


def parse_schedule(value: Any) -> list[float]:
    """A comma list of durations, e.g. ``1m,5m,15m``; an empty string means no retries."""
    if isinstance(value, list | tuple):
        return [parse_duration(v) for v in value]
    if not isinstance(value, str):
        raise ValueError("expected a comma-separated list of durations")
    return [parse_duration(part) for part in value.split(",") if part.strip()]


def _comma_list(value: Any) -> list[str]:
    if isinstance(value, list | tuple):
        return [str(v).strip() for v in value if str(v).strip()]
    if isinstance(value, str):
        return [part.strip() for part in value.split(",") if part.strip()]
    raise ValueError("expected a comma-separated list")


Schedule = Annotated[list[float], NoDecode]
CommaList = Annotated[list[str], NoDecode]


class Settings(BaseSettings):
    """One settings object for every service (``POSTWIRE_<NAME>``)."""

    model_config = SettingsConfigDict(
        env_prefix="POSTWIRE_", env_file=".env", extra="ignore", frozen=True
    )

    # URLs and tokens are SecretStr: printed, logged or repr'd they show as '**********';
    # the value is read with .get_secret_value() where it is used, and nowhere else.
    database_url: SecretStr = Field(
        SecretStr("postgresql://postgres@127.0.0.1:5432/postwire"),
        description="PostgreSQL DSN (a secret: `postwire settings` shows it without password).",
    )
    broker_url: SecretStr = Field(
        SecretStr("amqp://guest:guest@127.0.0.1:5672/"),
        description="RabbitMQ URL (a secret: `postwire settings` shows it without password).",
    )
    broker_management_url: str = Field(
        "http://127.0.0.1:15672",
        description="RabbitMQ's management HTTP API (the rabbitmq_management plugin), used "
        "with the broker URL's user and vhost to make the broker users that consume account "
        "queues over AMQP.",
    )
    admin_token: SecretStr | None = Field(
        None, description="Bearer token for /v1/admin; unset turns the admin API off."
    )
    env: Literal["development", "production"] = Field(
        "development",
        description="development or production. Production refuses to start the services "
        "that keep secrets (ingest, notifier) without POSTWIRE_SECRET_KEYS; the container "
        "image sets production.",
    )
    secret_keys: SecretStr | None = Field(
        None,
        description="Comma list of Fernet keys (`postwire generate-secret-key`) that encrypt "
        "stored secrets (webhook app keys, DKIM private keys): the first encrypts, all "
        "decrypt. To rotate: put a new key first, run `postwire rotate-secrets`, then drop "
        "the old key. Unset in development: a generated key kept in .dev/secret-key.",
    )
    region: str = Field("local", description="Region name written into events and rules.")
    http_host: str = Field(
        "127.0.0.1", description="Listen address of the HTTP API and the inbound MX."
    )
    http_port: int = Field(8080, ge=0, le=65535, description="HTTP listen port.")
    http_tls_cert: str | None = Field(
        None,
        description="PEM certificate file (chain) to serve the HTTP API over HTTPS, e.g. for "
        "vendor SDKs pointed at https://mail.example.internal; unset: plain HTTP (TLS at the "
        "gateway).",
    )
    http_tls_key: str | None = Field(
        None, description="PEM private key file of POSTWIRE_HTTP_TLS_CERT."
    )
    public_url: str = Field(
        "http://127.0.0.1:8080", description="Base URL of tracking and unsubscribe links."
    )
    smtp_port: int = Field(587, ge=0, le=65535, description="SMTP submission (STARTTLS); 0 off.")
    smtps_port: int = Field(465, ge=0, le=65535, description="SMTP submission (TLS); 0 off.")
    smtp_tls_cert: str | None = Field(None, description="PEM certificate for submission TLS.")
    smtp_tls_key: SecretStr | None = Field(
        None, description="PEM key (or its file) for submission TLS; a secret, never shown."
    )
    smtp_auth_require_tls: bool = Field(True, description="Refuse AUTH before TLS.")
    smtp_timeout: float = Field(
        60.0,
        gt=0,
        description="A submission session idle this long (no command, no DATA line) is closed.",
    )
    smtp_connections_per_ip: int = Field(
        50, ge=1, description="Submission sessions one source address may hold at once."
    )
    dns_nameservers: CommaList = Field(
        default_factory=list,
        description="Comma list of ip or ip:port for MX and domain checks; empty = system.",
    )
    delivery_port: int = Field(25, ge=1, le=65535, description="Port of recipients' MX hosts.")
    delivery_relay: str = Field(
        "", description="host:port of a smart host; empty delivers to MX hosts directly."
    )
    helo_name: str = Field(default_factory=socket.getfqdn, description="EHLO name of delivery.")
    tracking_scanner_window: float = Field(
        10.0,
        ge=0,
        description="An open or click this soon after delivery is a link scanner's, not the "
        "reader's: flagged machine and counted apart.",
    )
    trusted_proxies: CommaList = Field(
        default_factory=list,
        description="Comma list of addresses or CIDR ranges of the proxies in front of the "
        "HTTP services (gateway, ingress). A request from one of them is taken to come "
        "from the address it names last in X-Forwarded-For that is not itself a trusted "
        "proxy: the reader's address in open, click and unsubscribe events.",
    )
    sending_ips: CommaList = Field(
        default_factory=list,
        description="IP addresses mail leaves from, that sender domains' SPF must authorise; "
        "empty = the A/AAAA records of POSTWIRE_HELO_NAME.",
    )
    domain_recheck_interval: float = Field(
        6 * 3600.0,
        ge=0,
        description="How often verified and usable domains' records are checked again (a "
        "removed record moves the domain down), e.g. 6h; 0 never.",
    )
    bounce_domain: str = Field(
        "", description="Domain of the VERP return path (bounce+<env_id>@domain)."
    )
    inbound_port: int = Field(25, ge=0, le=65535, description="Inbound MX port; 0 off.")
    soft_bounce_schedule: Schedule = Field(
        default_factory=lambda: parse_schedule("1m,5m,15m,30m,1h,2h,4h,8h,16h"),
        description="Waits between delivery attempts after soft bounces.",
    )
    subscription_retry_scale: float = Field(
        1.0,
        gt=0,
        le=1,
        description="Multiplies the waits of HTTP subscriptions' MNS retry strategies "
        "(BACKOFF_RETRY, EXPONENTIAL_DECAY_RETRY); below 1 only to shorten them in tests.",
    )
    webhook_retry_schedule: Schedule = Field(
        default_factory=lambda: parse_schedule("3m,10m,30m,1h,6h,12h,24h"),
        description="Waits between webhook push attempts.",
    )
    webhook_timeout: float = Field(3.0, description="A push slower than this has failed.")
    allow_private_targets: bool = Field(
        False,
        description="Allow recipients' MX hosts in private or loopback ranges (tests, "
        "development); webhooks have their own setting, the relay is always trusted.",
    )
    allow_private_webhooks: bool = Field(
        False,
        description="Allow webhook URLs in private or loopback ranges, for every account "
        "(internal receivers, tests).",
    )

    # Ours, beyond the contract table.
    log_level: str = Field("INFO", description="Log level of every logger.")
    log_format: str = Field("json", pattern="^(json|text)$", description="json or text logs.")
    delivery_concurrency: int = Field(
        64,
        ge=1,
        le=2000,
        description="Sizes one delivery process: it holds up to 4x this many recipients in "
        "its lanes (waiting and in flight).",
    )
    delivery_connections_per_host: int = Field(
        8, ge=1, le=200, description="SMTP connections one delivery process opens per MX host."
    )
    delivery_lease: float = Field(
        15.0,
        ge=1.0,
        description="Lease on a recipient being delivered, renewed every third of it; after "
        "a crash its recipients are taken again within this time.",
    )
    delivery_lane_rate: float = Field(
        0.0, ge=0.0, description="Messages per second per recipient domain; 0 is unlimited."
    )
    delivery_lane_overrides: CommaList = Field(
        default_factory=list,
        description="Per-domain lanes, domain=connections[/rate], e.g. gmail.com=4/20,qq.com=2.",
    )
    delivery_attempt_timeout: float = Field(
        120.0, description="Longest one SMTP delivery attempt may take before it soft-fails."
    )
    delivery_ca_file: str = Field(
        "",
        description="PEM file of CA certificates trusted, besides the system's, when a TLS "
        "policy requires verified TLS (an internal CA); empty = the system trust store only.",
    )
    mta_sts: bool = Field(
        False,
        description="Honour recipient domains' MTA-STS policies (RFC 8461): to a domain whose "
        "policy is `enforce`, mail goes only to the MX hosts the policy names, over STARTTLS "
        "with a certificate verified for the MX host name (as the TLS mode `require`, whatever "
        "the account's TLS policy says), or fails saying why; `testing` policies only log. "
        "Policies come from https://mta-sts.<domain> and are cached for their max_age. Not "
        "used with POSTWIRE_DELIVERY_RELAY (the relay is the next hop).",
    )
    mta_sts_port: int = Field(
        443,
        ge=1,
        le=65535,
        description="Port of the MTA-STS policy hosts (https://mta-sts.<domain>): 443, as RFC "
        "8461 says; another only for tests, as POSTWIRE_DELIVERY_PORT is for MX hosts.",
    )
    notifier_concurrency: int = Field(
        64,
        ge=1,
        le=2000,
        description="Sizes one notifier process: it holds up to 4x this many pushes in its "
        "lanes (4 at once per webhook).",
    )
    outbox_batch: int = Field(
        500, ge=1, le=10000, description="Outbox rows one relay round publishes."
    )
    outbox_linger: float = Field(
        0.05,
        ge=0,
        le=5,
        description="How long an outbox relay waits after a commit for more, e.g. 50ms: "
        "fewer, larger rounds leave CPU to the API under load (0 publishes at once).",
    )
    processes: int = Field(
        0,
        ge=0,
        le=64,
        description="Worker processes of `postwire run`; 0: one per CPU (at most 4) for "
        "`run all`, 1 for single services (they scale as separate deployments).",
    )
    redrive_interval: float = Field(
        300.0,
        gt=0,
        description="How often dead-lettered messages are looked at and sent back to work.",
    )
    idempotency_retention: float = Field(
        86400.0,
        gt=0,
        description="Idempotency-Key values are honoured at least this long (then their "
        "whole day is dropped), e.g. 1d.",
    )
    event_log_retention: float = Field(
        30 * 86400.0,
        gt=0,
        description="How long the event log keeps events (whole days are dropped), e.g. 30d.",
    )
    attempt_retention: float = Field(
        30 * 86400.0,
        gt=0,
        description="How long delivery attempts, webhook pushes and push attempts are kept "
        "(whole days), e.g. 30d.",
    )
    db_pool_size: int = Field(10, ge=1, le=500, description="PostgreSQL connections per process.")

    @field_validator("soft_bounce_schedule", "webhook_retry_schedule", mode="before")
    @classmethod
    def _schedule(cls, value: Any) -> list[float]:
        return parse_schedule(value)

    @field_validator(
        "admin_token", "secret_keys", "smtp_tls_key", "http_tls_cert", "http_tls_key", mode="before"
    )
    @classmethod
    def _empty_is_unset(cls, value: Any) -> Any:
        return None if value == "" else value

    @field_validator(
        "webhook_timeout",
        "smtp_timeout",
        "delivery_attempt_timeout",
        "tracking_scanner_window",
        "delivery_lease",
        "redrive_interval",
        "outbox_linger",
        "event_log_retention",
        "attempt_retention",
        "idempotency_retention",
        "domain_recheck_interval",
        mode="before",
    )
    @classmethod
    def _duration(cls, value: Any) -> float:
        return parse_duration(value)

    @field_validator(
        "dns_nameservers", "delivery_lane_overrides", "sending_ips", "trusted_proxies",
        mode="before",
    )  # fmt: skip
    @classmethod
    def _list(cls, value: Any) -> list[str]:
        return _comma_list(value)

    @model_validator(mode="after")
    def _check(self) -> Settings:
        token = self.admin_token.get_secret_value() if self.admin_token else None
        if token is not None and len(token) < 16:
            raise ValueError(
                "POSTWIRE_ADMIN_TOKEN is too short to be a secret: use at least 16 random "
                "characters (e.g. `python -c 'import secrets; print(secrets.token_urlsafe())'`)"
            )
        if self.secret_keys is not None:
            check_secret_keys(self.secret_keys.get_secret_value())
        for proxy in self.trusted_proxies:
            try:
                ipaddress.ip_network(proxy, strict=False)
            except ValueError:
                raise ValueError(
                    f"POSTWIRE_TRUSTED_PROXIES: {proxy!r} is not an address or CIDR range"
                ) from None
        if self.delivery_relay:
            try:
                if not _HOST_PORT.fullmatch(self.delivery_relay):
                    raise ValueError
                split_host_port(self.delivery_relay, default_port=25)
            except ValueError:
                raise ValueError(
                    "POSTWIRE_DELIVERY_RELAY must be host:port, e.g. 127.0.0.1:1025"
                ) from None
        for entry in self.delivery_lane_overrides:
            parse_lane_override(entry)
        for server in self.dns_nameservers:
            split_host_port(server, default_port=53)
        return self

    @property
    def lane_overrides(self) -> dict[str, tuple[int, float]]:
        """``POSTWIRE_DELIVERY_LANE_OVERRIDES`` as domain -> (connections, rate)."""
        return dict(parse_lane_override(entry) for entry in self.delivery_lane_overrides)

    @property
    def relay(self) -> tuple[str, int] | None:
        return (
            split_host_port(self.delivery_relay, default_port=25) if self.delivery_relay else None
        )


def secret_key_list(value: str) -> list[str]:
    """``POSTWIRE_SECRET_KEYS`` as a list, first (the one that encrypts) first."""
    return [part.strip() for part in value.split(",") if part.strip()]


def check_secret_keys(value: str) -> None:
    from cryptography.fernet import Fernet

    keys = secret_key_list(value)
    if not keys:
        raise ValueError("POSTWIRE_SECRET_KEYS is empty; unset it or name at least one key")
    for number, key in enumerate(keys, 1):
        try:
            Fernet(key)
        except ValueError:
            raise ValueError(
                f"POSTWIRE_SECRET_KEYS: key {number} is not a Fernet key (32 url-safe "
                "base64-encoded bytes); make one with `postwire generate-secret-key`"
            ) from None


# Query parameters that carry secrets in DSNs (libpq's password, sslpassword, ...).
_SECRET_PARAM = re.compile(r"pass|secret|token|key|auth", re.IGNORECASE)


def redact(url: str) -> str:
    """``url`` without its secrets: the userinfo password and any query parameter named
    like one (``?password=``, ``sslpassword``, ``token``, ...) become ``***``. What does
    not parse as ``scheme://...`` is hidden entirely."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return "(hidden)"
    if not parts.scheme or not url.startswith(f"{parts.scheme}://"):
        return "(hidden)"
    userinfo, at, hosts = parts.netloc.rpartition("@")
    if at:
        user, colon, _password = userinfo.partition(":")
        netloc = f"{user}:***@{hosts}" if colon else parts.netloc
    else:
        netloc = parts.netloc
    query = urlencode(
        [
            (name, "***" if _SECRET_PARAM.search(name) else value)
            for name, value in parse_qsl(parts.query, keep_blank_values=True)
        ],
        safe="*/:,",
    )
    return urlunsplit(parts._replace(netloc=netloc, query=query, fragment=""))


_RATE = re.compile(r"[0-9]+(?:\.[0-9]+)?")


def parse_lane_override(entry: str) -> tuple[str, tuple[int, float]]:
    """``"gmail.com=4/20"`` -> ``("gmail.com", (4, 20.0))``; ``"qq.com=2"``: rate 0."""
    domain, sep, value = entry.partition("=")
    connections, _, rate = value.partition("/")
    if not (sep and domain.strip() and connections.isdigit() and int(connections) > 0):
        raise ValueError(
            f"POSTWIRE_DELIVERY_LANE_OVERRIDES: {entry!r} is not "
            "domain=connections[/rate], e.g. gmail.com=4/20"
        )
    if rate and not _RATE.fullmatch(rate):
        raise ValueError(f"POSTWIRE_DELIVERY_LANE_OVERRIDES: {rate!r} is not a rate")
    return domain.strip().lower().rstrip("."), (int(connections), float(rate or 0))


_HOST_PORT = re.compile(r"(\[[0-9a-fA-F:.]+\]|[A-Za-z0-9.-]+):[0-9]{1,5}")


def split_host_port(value: str, *, default_port: int) -> tuple[str, int]:
    """``"1.2.3.4:53"``, ``"[::1]:53"``, ``"::1"`` or ``"host"`` -> (host, port)."""
    value = value.strip()
    if value.startswith("["):
        host, closed, rest = value[1:].partition("]")
        if not closed or (rest and not rest.startswith(":")):
            raise ValueError(f"{value!r} is not host, host:port or [ipv6]:port")
        port = int(rest[1:]) if rest else default_port
    elif value.count(":") == 1:
        host, port_text = value.split(":")
        port = int(port_text)
    else:
        host, port = value, default_port
    if not host or not 0 < port < 65536:
        raise ValueError(f"{value!r} is not host, host:port or [ipv6]:port")
    return host, port
