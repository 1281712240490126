"""Identifiers: time-ordered, unguessable, URL- and header-safe.

An id is 48 bits of milliseconds since the epoch followed by 80 random bits, written in
Crockford's base32 (26 characters, like a ULID), so ids sort by creation time and index
well, and no database round trip is needed to make one.
"""

from __future__ import annotations

import re
import secrets
import time

from postwire_common.errors import InvalidValue

_ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
_ID = re.compile(r"[0-9A-Z]{26}")


def new_id(now: float | None = None) -> str:
    millis = int((time.time() if now is None else now) * 1000) & ((1 << 48) - 1)
    value = (millis << 80) | secrets.randbits(80)
    chars = []
    for _ in range(26):
        chars.append(_ALPHABET[value & 31])
        value >>= 5
    return "".join(reversed(chars))


def new_secret(nbytes: int = 24) -> str:
    """A random secret (API keys, app keys, tokens), URL-safe."""
    return secrets.token_urlsafe(nbytes)


def checked_id(value: str, what: str) -> str:
    """``value`` if it has the shape of :func:`new_id`'s ids (a path or cursor given back
    to us), else ``invalid_value`` saying ``what`` it should have been."""
    if not _ID.fullmatch(value):
        raise InvalidValue(f"{what} is not one this API returned")
    return value
