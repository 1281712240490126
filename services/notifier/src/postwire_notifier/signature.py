"""Push signatures (Tencent DMS / SendCloud): ``hex(HMAC-SHA256(app_key, timestamp + token))``.

The seed's Java and PHP samples concatenate without a separator; its Python sample puts
a space between and is wrong (API.md).
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from typing import Any


def sign(app_key: str, timestamp: int, token: str) -> str:
    return hmac.new(app_key.encode(), f"{timestamp}{token}".encode(), hashlib.sha256).hexdigest()


def verify(app_key: str, timestamp: int, token: str, signature: str) -> bool:
    return hmac.compare_digest(sign(app_key, timestamp, token), signature)


def new_token() -> str:
    return secrets.token_hex(24)  # 48 characters


def signed(
    body: dict[str, Any], app_key: str, token: str, now: float | None = None
) -> dict[str, Any]:
    """``body`` plus ``timestamp``, ``token`` and ``signature`` for one push request."""
    timestamp = int(time.time() if now is None else now)
    return {
        **body,
        "timestamp": timestamp,
        "token": token,
        "signature": sign(app_key, timestamp, token),
    }


def signature_headers(app_key: str, token: str, now: float | None = None) -> dict[str, str]:
    """The same signature in headers, for subscription pushes whose body is the message
    itself (SIMPLIFIED, JSON or XML) and has no room for it."""
    timestamp = int(time.time() if now is None else now)
    return {
        "X-Postwire-Timestamp": str(timestamp),
        "X-Postwire-Token": token,
        "X-Postwire-Signature": sign(app_key, timestamp, token),
    }
