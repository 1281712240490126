"""Sender domains: name rules, DKIM keys and the DNS records a user must publish.

Records (SendCloud's set): SPF and DKIM TXT (required), DMARC TXT, MX for bounces and
replies, and a tracking CNAME. Checking them by real DNS queries is
``POST /v1/domains/{name}/verify`` (a later step); until then an operator can mark a
domain verified with ``POST /v1/admin/domains/{name}/verified``.
"""

from __future__ import annotations

import base64
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

import idna
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from email_validator import SPECIAL_USE_DOMAIN_NAMES

from postwire_common.config import Settings
from postwire_common.errors import InvalidValue

_LABEL = re.compile(r"(?!-)[a-z0-9-]{1,63}(?<!-)")
PURPOSES = ("spf", "dkim", "dmarc", "mx", "tracking")


def normalize_domain(name: str) -> str:
    """A domain name as users may register it: 1-66 characters (KooMessage), at least
    two labels, letters/digits/hyphens after IDNA encoding."""
    if not isinstance(name, str) or not name.strip():
        raise InvalidValue("domain name is empty")
    candidate = name.strip().rstrip(".").lower()
    try:
        # IDNA 2008 with UTS 46 mapping, as email_validator encodes addresses' domains
        # (Python's own "idna" codec is IDNA 2003: faß.de would become fass.de).
        ascii_name = idna.encode(candidate, uts46=True).decode("ascii")
    except (idna.IDNAError, UnicodeError):
        raise InvalidValue(f"{name!r} is not a valid domain name") from None
    labels = ascii_name.split(".")
    if not 1 <= len(ascii_name) <= 66:
        raise InvalidValue("a domain name has 1 to 66 characters")
    if len(labels) < 2 or not all(_LABEL.fullmatch(label) for label in labels):
        raise InvalidValue(f"{name!r} is not a valid domain name")
    if labels[-1].isdigit():
        raise InvalidValue(f"{name!r} is an IP address, not a domain name")
    if labels[-1] in SPECIAL_USE_DOMAIN_NAMES:
        # Refused here with the text that sender addresses on it would get, not later.
        raise InvalidValue(
            f"{name!r}: the part after the last dot is a special-use or reserved name that "
            "cannot be used with email"
        )
    return ascii_name


@dataclass(frozen=True)
class DkimKey:
    selector: str
    private_pem: str
    public_b64: str


def generate_dkim_key(now: datetime | None = None) -> DkimKey:
    """A 2048-bit RSA key; the selector names the month it was made, for rotation."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    private_pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()
    public_der = key.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    selector = f"pw{(now or datetime.now(UTC)):%Y%m}"
    return DkimKey(selector, private_pem, base64.b64encode(public_der).decode())


def dns_records(
    settings: Settings,
    name: str,
    selector: str,
    public_b64: str,
    statuses: dict[str, str],
) -> list[dict[str, Any]]:
    tracking_host = urlsplit(settings.public_url).hostname or settings.helo_name
    records = [
        ("spf", "TXT", name, f"v=spf1 a:{settings.helo_name} ~all"),
        ("dkim", "TXT", f"{selector}._domainkey.{name}", f"v=DKIM1; k=rsa; p={public_b64}"),
        ("dmarc", "TXT", f"_dmarc.{name}", "v=DMARC1; p=none"),
        ("mx", "MX", name, f"10 {settings.helo_name}"),
        ("tracking", "CNAME", f"track.{name}", tracking_host),
    ]
    return [
        {
            "purpose": purpose,
            "type": kind,
            "host": host,
            "value": value,
            "status": statuses.get(purpose, "pending"),
        }
        for purpose, kind, host, value in records
    ]
