"""Sender domains: name rules, DKIM keys and the DNS records a user must publish.

Records (SendCloud's set): SPF and DKIM TXT (required), DMARC TXT, MX for bounces and
replies, and a tracking CNAME. ``POST /v1/domains/{name}/verify`` checks them by real DNS
queries (``domain_checks``); in development an operator can mark a domain verified with
``POST /v1/admin/domains/{name}/verified``.

A domain with Ed25519 on (RFC 8463) has a second DKIM key and record, ``dkim_ed25519``:
its selector is the RSA scheme's with an ``e`` after it, its record's ``p=`` the raw
32-byte public key. It is optional: the RSA key always signs, receivers that do not know
ed25519 ignore the other signature.
"""

from __future__ import annotations

import base64
import re
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

import idna
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519, rsa
from email_validator import SPECIAL_USE_DOMAIN_NAMES

from postwire_common.config import Settings
from postwire_common.errors import InvalidValue

_LABEL = re.compile(r"(?!-)[a-z0-9-]{1,63}(?<!-)")
PURPOSES = ("spf", "dkim", "dmarc", "mx", "tracking")


def normalize_domain(name: str, *, longest: int = 66) -> str:
    """A domain name as users may register it: 1-66 characters (KooMessage; ``longest``
    for names that are not sender domains), at least two labels, letters/digits/hyphens
    after IDNA encoding."""
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
    if not 1 <= len(ascii_name) <= longest:
        raise InvalidValue(f"a domain name has 1 to {longest} characters")
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
    private_pem: str  # PKCS#8, RSA or Ed25519
    public_b64: str  # the record's p=: RSA's SubjectPublicKeyInfo, Ed25519's raw 32 bytes


def _selector(when: datetime | None, replacing: str | None) -> str:
    """The month a key was made (the minute, for a rotation) and four random hex digits.
    The random part keeps a selector from ever naming two keys: a domain deleted and added
    again in the same month, or rotated twice in a minute, gets a new selector (delivery
    keeps keys per selector and never replaces one)."""
    when = when or datetime.now(UTC)
    stamp = f"{when:%Y%m}" if replacing is None else f"{when:%Y%m%d%H%M}"
    while True:
        selector = f"pw{stamp}{secrets.token_hex(2)}"
        if selector != replacing:
            return selector


def _pkcs8(key: rsa.RSAPrivateKey | ed25519.Ed25519PrivateKey) -> str:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()


def generate_dkim_key(now: datetime | None = None, replacing: str | None = None) -> DkimKey:
    """A 2048-bit RSA key, selector ``pw2024059f3a`` (``pw2024050612309f3a`` for a rotation)."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    public_der = key.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return DkimKey(_selector(now, replacing), _pkcs8(key), base64.b64encode(public_der).decode())


def generate_ed25519_key(rsa_selector: str) -> DkimKey:
    """An Ed25519 key (RFC 8463) to sign next to the RSA key of ``rsa_selector``; its
    selector is that one with an ``e`` (``pw2024059f3ae``), so it never names an RSA key's
    record. ``public_b64`` is the raw public key (RFC 8463 4.2)."""
    key = ed25519.Ed25519PrivateKey.generate()
    public_raw = key.public_key().public_bytes(
        serialization.Encoding.Raw, serialization.PublicFormat.Raw
    )
    return DkimKey(f"{rsa_selector}e", _pkcs8(key), base64.b64encode(public_raw).decode())


def tracking_host(settings: Settings) -> str:
    return urlsplit(settings.public_url).hostname or settings.helo_name


def dns_records(
    settings: Settings,
    name: str,
    selector: str,
    public_b64: str,
    statuses: dict[str, str],
    found: dict[str, Any] | None = None,
    next_key: tuple[str, str] | None = None,
    ed25519_key: tuple[str, str] | None = None,
) -> list[dict[str, Any]]:
    """The records to publish, each with its status and what DNS held at the last check
    (``found``, and ``detail``: why it is not ok). ``next_key`` (selector, public key): a
    rotation's new DKIM record, to publish next to the current one; ``ed25519_key``
    (selector, public key): the Ed25519 DKIM record of a domain that has it on."""
    records = [
        ("spf", "TXT", name, f"v=spf1 a:{settings.helo_name} ~all"),
        ("dkim", "TXT", f"{selector}._domainkey.{name}", f"v=DKIM1; k=rsa; p={public_b64}"),
        ("dmarc", "TXT", f"_dmarc.{name}", "v=DMARC1; p=none"),
        ("mx", "MX", name, f"10 {settings.helo_name}"),
        ("tracking", "CNAME", f"track.{name}", tracking_host(settings)),
    ]
    if next_key is not None:
        selector_next, public_next = next_key
        records.append(
            ("dkim_next", "TXT", f"{selector_next}._domainkey.{name}",
             f"v=DKIM1; k=rsa; p={public_next}")
        )  # fmt: skip
    if ed25519_key is not None:
        selector_ed, public_ed = ed25519_key
        records.append(
            ("dkim_ed25519", "TXT", f"{selector_ed}._domainkey.{name}",
             f"v=DKIM1; k=ed25519; p={public_ed}")
        )  # fmt: skip
    seen = found or {}
    return [
        {
            "purpose": purpose,
            "type": kind,
            "host": host,
            "value": value,
            "status": statuses.get(purpose, "pending"),
            "found": seen.get(purpose, {}).get("found", []),
            "detail": seen.get(purpose, {}).get("detail"),
        }
        for purpose, kind, host, value in records
    ]
