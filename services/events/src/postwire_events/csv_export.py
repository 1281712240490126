"""CSV downloads (``format=csv``): streamed, one header row, RFC 4180 quoting.

A cell that starts with ``=``, ``+``, ``-``, ``@`` (or a tab or carriage return) is
written with a leading ``'``: spreadsheets would otherwise run it as a formula (CSV
injection), and labels, subjects and addresses are the senders' or recipients' text.
Times are ISO 8601 in UTC (``2026-12-01T10:00:00Z``), absent values empty.
"""

from __future__ import annotations

import csv
import io
from collections.abc import AsyncIterator, Iterable, Sequence
from datetime import UTC, datetime
from typing import Any

from fastapi.responses import StreamingResponse

_FORMULA = ("=", "+", "-", "@", "\t", "\r")
ROWS_PER_CHUNK = 500


def cell(value: Any) -> str | int | float:
    if value is None:
        return ""
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, int | float):
        return value
    if isinstance(value, datetime):
        return value.astimezone(UTC).isoformat().replace("+00:00", "Z")
    text = str(value)
    return "'" + text if text.startswith(_FORMULA) else text


def lines(rows: Iterable[Sequence[Any]]) -> str:
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerows([cell(v) for v in row] for row in rows)
    return out.getvalue()


async def _chunks(
    columns: Sequence[str], pages: AsyncIterator[Sequence[dict[str, Any]]]
) -> AsyncIterator[str]:
    yield lines([columns])
    async for page in pages:
        for start in range(0, len(page), ROWS_PER_CHUNK):
            yield lines([r[c] for c in columns] for r in page[start : start + ROWS_PER_CHUNK])


def csv_response(
    filename: str, columns: Sequence[str], pages: AsyncIterator[Sequence[dict[str, Any]]]
) -> StreamingResponse:
    """``pages`` of rows (dicts with at least ``columns``) as a CSV download."""
    return StreamingResponse(
        _chunks(columns, pages),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="{filename}"'},
    )


async def one_page(rows: Sequence[dict[str, Any]]) -> AsyncIterator[Sequence[dict[str, Any]]]:
    yield rows


# What routes with ``format=csv`` declare for OpenAPI: the 200 answer is JSON or CSV.
CSV_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {"content": {"text/csv": {"schema": {"type": "string"}}}},
}
