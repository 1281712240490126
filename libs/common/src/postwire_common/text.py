"""What text we accept from outside: no NUL or other control characters where a name or
an id is expected, and never an unpaired surrogate (which no encoding can store)."""

from __future__ import annotations

import re
from typing import Any

_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
# NUL cannot be stored in PostgreSQL text or sent in mail; a lone surrogate cannot be
# encoded as UTF-8 at all.
_UNSTORABLE = re.compile(r"[\x00\ud800-\udfff]")


def has_control(text: str) -> bool:
    return _CONTROL.search(text) is not None


def unstorable(value: Any) -> bool:
    """Whether ``value`` (JSON-like: dicts, lists, strings) holds text no store can keep."""
    if isinstance(value, str):
        return _UNSTORABLE.search(value) is not None
    if isinstance(value, dict):
        return any(unstorable(k) or unstorable(v) for k, v in value.items())
    if isinstance(value, list | tuple):
        return any(unstorable(v) for v in value)
    return False
