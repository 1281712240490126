"""Points in time taken from callers: timezone-aware, in UTC, within what we store.

``0001-01-01T00:00:00+14:00`` parses, but lies before year 1 in UTC; PostgreSQL (and
Python's own arithmetic) refuse such values far from the route that took them. Every
time a caller gives is read through :data:`Instant` (or :func:`in_range`), so it fails
where it is given, as ``invalid_value``.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

from pydantic import AfterValidator, BeforeValidator

EARLIEST = datetime(1970, 1, 1, tzinfo=UTC)
LATEST = datetime(9999, 12, 30, tzinfo=UTC)


def in_range(value: datetime) -> datetime:
    """``value`` in UTC (naive means UTC), or ``ValueError`` if it is out of range."""
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    try:
        utc = value.astimezone(UTC)
    except OverflowError:  # before year 1 or after 9999 in UTC
        utc = None
    if utc is None or not EARLIEST <= utc <= LATEST:
        raise ValueError("a time must lie between 1970-01-01 and 9999-12-30 (UTC)")
    return utc


def _number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def iso_8601(value: object) -> object:
    """Times are ISO 8601 text, as the OpenAPI document's ``date-time`` says; pydantic
    would also read a number (``until=0.5``, ``since=-6.7e-219``) as Unix seconds."""
    if isinstance(value, int | float) or (isinstance(value, str) and _number(value)):
        raise ValueError("a time is ISO 8601 text such as 2026-01-31T12:00:00Z")
    return value


Instant = Annotated[datetime, BeforeValidator(iso_8601), AfterValidator(in_range)]
