"""Tracking tokens: what a tracking URL is about, signed so nobody can make one up.

A token names the kind of hit (``o`` open, ``c`` click, ``u`` unsubscribe), the account,
the recipient's message, its content, the link's number in that content and a 48-bit
hash of the link (so a click never leads to another link, even if numbering changes with
the code after the mail went out), and ends in
128 bits of HMAC-SHA256 over all of them under a key derived from POSTWIRE_SECRET_KEYS
(any of the keys verifies, so links in delivered mail outlive a key rotation for as long
as the old key stays listed). The click's target is not in the token: the events service
reads link ``n`` from the stored content, so a click can only ever lead to a URL the
sender wrote.

    /t/c/<base64url("tenant|env_id|content_id|n|link")>.<base64url(mac)>

Only the exact string we made verifies (canonical base64url, no padding).
"""

from __future__ import annotations

import base64
import binascii
import hmac
from dataclasses import dataclass
from enum import StrEnum
from hashlib import sha256

PURPOSE = b"postwire tracking links v1"
_MAC_BYTES = 16
_MAX_TOKEN = 400


class Kind(StrEnum):
    OPEN = "o"
    CLICK = "c"
    UNSUBSCRIBE = "u"


@dataclass(frozen=True, slots=True)
class Claim:
    kind: Kind
    tenant_id: str
    env_id: str
    content_id: str
    n: int = 0  # the link's number (clicks); 0 otherwise
    link: str = ""  # link_check() of the link's URL (clicks); "" otherwise

    def _payload(self) -> bytes:
        fields = (self.tenant_id, self.env_id, self.content_id, str(self.n), self.link)
        if any("|" in f or not f.isascii() for f in fields):
            raise ValueError(f"a tracking claim's fields are ASCII without '|': {fields}")
        return "|".join(fields).encode("ascii")


def link_check(url: str) -> str:
    """48 bits of SHA-256 of a link's URL, as 8 base64url characters."""
    return _b64(sha256(url.encode("utf-8", "surrogateescape")).digest()[:6])


_FROM_URLSAFE = str.maketrans("-_", "+/")


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    """Strict: only what :func:`_b64` writes decodes (no other alphabet, no padding,
    no unused bits set), so one claim has one token string."""
    data = base64.b64decode(text.translate(_FROM_URLSAFE) + "=" * (-len(text) % 4), validate=True)
    if _b64(data) != text:
        raise ValueError("not canonical base64url")
    return data


class TokenSigner:
    """Signs with the first key, verifies with any."""

    def __init__(self, keys: list[bytes]) -> None:
        if not keys:
            raise ValueError("tracking tokens need at least one key")
        self._keys = keys

    def _mac(self, key: bytes, kind: Kind, payload: bytes) -> bytes:
        return hmac.new(key, kind.encode() + b"|" + payload, sha256).digest()[:_MAC_BYTES]

    def sign(self, claim: Claim) -> str:
        payload = claim._payload()
        return f"{_b64(payload)}.{_b64(self._mac(self._keys[0], claim.kind, payload))}"

    def verify(self, kind: Kind, token: str) -> Claim | None:
        """The claim of a token of this ``kind``; None for anything we did not sign."""
        if len(token) > _MAX_TOKEN or token.count(".") != 1:
            return None
        body, mac_text = token.split(".")
        try:
            payload, mac = _unb64(body), _unb64(mac_text)
        except (binascii.Error, ValueError):
            return None
        if len(mac) != _MAC_BYTES or not any(
            hmac.compare_digest(mac, self._mac(key, kind, payload)) for key in self._keys
        ):
            return None
        try:
            tenant_id, env_id, content_id, n, link = payload.decode("ascii").split("|")
            return Claim(kind, tenant_id, env_id, content_id, int(n), link)
        except ValueError:  # signed by us, so never seen: a claim of another shape
            return None

    def url(self, base: str, claim: Claim) -> str:
        """The tracking URL of ``claim`` under ``base`` (no trailing slash)."""
        suffix = ".gif" if claim.kind is Kind.OPEN else ""
        return f"{base}/t/{claim.kind.value}/{self.sign(claim)}{suffix}"
