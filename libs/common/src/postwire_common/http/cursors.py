"""Page cursors of listings ordered by (time, key): the last row's, opaque to callers."""

from __future__ import annotations

import base64
import binascii
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from postwire_common.errors import InvalidValue
from postwire_common.instants import in_range


def encode_cursor(when: datetime, key: str) -> str:
    raw = f"{when.isoformat()}|{key}"
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[datetime, str]:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        when, key = raw.split("|", 1)
        return in_range(datetime.fromisoformat(when)), key
    except (binascii.Error, UnicodeDecodeError, ValueError):
        raise InvalidValue("cursor is not one this API returned") from None


def next_cursor(rows: Sequence[Mapping[str, Any]], limit: int, key: str = "id") -> str | None:
    """The cursor of the page after ``rows`` (ordered by ``created_at`` and ``key``), or
    None when this page is the last (it came short of ``limit``)."""
    if len(rows) < limit or not rows:
        return None
    last = rows[-1]
    return encode_cursor(last["created_at"], str(last[key]))
