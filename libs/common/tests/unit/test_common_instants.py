"""Times given by callers: ISO 8601 text only, as the OpenAPI document says."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from pydantic import TypeAdapter, ValidationError

from postwire_common.instants import Instant

INSTANT: TypeAdapter[datetime] = TypeAdapter(Instant)


@pytest.mark.parametrize(
    "text", ["2026-01-31T12:00:00Z", "2026-01-31T13:00:00+01:00", "2026-01-31T12:00:00"]
)
def test_iso_8601_text_is_a_time_in_utc(text: str) -> None:
    assert INSTANT.validate_python(text) == datetime(2026, 1, 31, 12, tzinfo=UTC)


@pytest.mark.parametrize(
    "value",
    ["0.5", "1700000000", "-5", " 12 ", "-6.7e-219", "1E9", "1_700_000_000", 1700000000, 0.5],
)
def test_numbers_are_not_read_as_unix_seconds(value: object) -> None:
    with pytest.raises(ValidationError, match="ISO 8601"):
        INSTANT.validate_python(value)
