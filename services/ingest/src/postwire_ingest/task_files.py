"""A task's recipients file (CSV or XLSX), read row by row and never whole.

The first row is the header: ``address`` and a column per template parameter (other
columns are ignored). Each later row is a recipient, or an invalid row reported with its
number and why: an address that does not parse, or a parameter without a value. Rows are
numbered as a spreadsheet numbers them (the header is row 1), so a user finds the row
reported. Completely empty rows (Excel leaves them at the end) are skipped.

XLSX is read with openpyxl's read-only mode, which parses the sheet's XML as a stream.
Its shared strings table is loaded whole; the declared uncompressed sizes of the archive's
parts are checked first, so a small file cannot expand into gigabytes (a zip bomb).
"""

from __future__ import annotations

import csv
import itertools
import zipfile
from collections.abc import Generator, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, time
from enum import StrEnum
from typing import IO, Any

from postwire_common.addresses import parse_mailbox
from postwire_common.errors import InvalidEmail, InvalidValue, MissingMacros
from postwire_ingest.templates import Content, check_values

MAX_XLSX_PART_BYTES = 256 * 1024 * 1024  # uncompressed, any one part of the archive
MAX_SHARED_STRINGS_BYTES = 64 * 1024 * 1024  # uncompressed: openpyxl holds them all
MAX_CELL_CHARS = 100_000  # as a template value sent over HTTP (api/models.Variables)
MAX_COLUMNS = 64


class FileFormat(StrEnum):
    CSV = "csv"
    XLSX = "xlsx"


def sniff(head: bytes) -> FileFormat:
    """The format by content, not by name: XLSX is a zip archive; CSV is text."""
    if head.startswith(b"PK\x03\x04"):
        return FileFormat.XLSX
    if b"\x00" in head:
        raise InvalidValue("file: neither CSV (UTF-8 text) nor XLSX")
    return FileFormat.CSV


def check_archive(file: IO[bytes]) -> None:
    """Refuse an XLSX whose parts would expand past the limits when read."""
    try:
        with zipfile.ZipFile(file) as archive:
            for info in archive.infolist():
                limit = (
                    MAX_SHARED_STRINGS_BYTES
                    if info.filename.lower() == "xl/sharedstrings.xml"
                    else MAX_XLSX_PART_BYTES
                )
                if info.file_size > limit:
                    raise InvalidValue(
                        f"file: the XLSX part {info.filename} expands to {info.file_size} "
                        f"bytes (at most {limit}); split the recipients into several files"
                    )
    except zipfile.BadZipFile:
        raise InvalidValue("file: not a readable XLSX (zip) file") from None
    finally:
        file.seek(0)


def _cell(value: Any) -> str:
    """A spreadsheet value as the text a template inserts."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))  # a number typed as 42 is stored as 42.0
    if isinstance(value, datetime | date | time):
        return value.isoformat()
    return str(value)


def _lines(file: IO[bytes]) -> Iterator[str]:
    """The file's lines as text, decoded one at a time: a line that is not UTF-8 fails
    at its own row, not at the start of the block a decoder read ahead."""
    for n, raw in enumerate(file):
        line = raw.decode("utf-8")
        yield line[1:] if n == 0 and line.startswith("\ufeff") else line  # Excel's BOM


def _csv_rows(file: IO[bytes]) -> Iterator[list[str]]:
    lines = _lines(file)
    first = next(lines, "")
    # Excel writes ";" (or a tab) where the decimal separator is a comma.
    delimiter = max((",", ";", "\t"), key=first.count)
    yield from csv.reader(itertools.chain([first], lines), delimiter=delimiter)


def _xlsx_rows(file: IO[bytes]) -> Iterator[list[str]]:
    from openpyxl import load_workbook

    check_archive(file)
    book = load_workbook(file, read_only=True, data_only=True)
    try:
        sheet = book.worksheets[0]
        sheet.reset_dimensions()  # files not made by Excel often declare a wrong range
        for values in sheet.iter_rows(values_only=True):
            yield [_cell(v) for v in values]
    finally:
        book.close()


class RowError(Exception):
    """The file cannot be read past a row: the whole task fails, saying where."""

    def __init__(self, row: int, reason: str) -> None:
        super().__init__(f"row {row}: {reason}")
        self.row = row
        self.reason = reason


def rows(file: IO[bytes], fmt: FileFormat) -> Generator[tuple[int, list[str]], None, None]:
    """(row number, cells) of every row, the header first, as numbered in the file."""
    reader = _xlsx_rows(file) if fmt is FileFormat.XLSX else _csv_rows(file)
    number = 0
    try:
        for number, cells in enumerate(reader, start=1):
            yield number, cells
    except UnicodeDecodeError:
        raise RowError(number + 1, "not UTF-8 text (save the file as CSV UTF-8)") from None
    except csv.Error as exc:
        raise RowError(number + 1, f"not readable as CSV: {exc}") from None
    except (zipfile.BadZipFile, KeyError, ValueError, OSError) as exc:
        raise RowError(number + 1, f"not readable as XLSX: {exc}") from None


@dataclass(frozen=True, slots=True)
class Header:
    address: int  # the address column's index
    columns: Mapping[str, int]  # parameter -> column index


def read_header(cells: Sequence[str], params: Sequence[str]) -> Header:
    """The header's columns; ``invalid_value`` without an address column, and
    ``missing_macros`` naming every template parameter without a column."""
    if len(cells) > MAX_COLUMNS:
        raise InvalidValue(f"file: at most {MAX_COLUMNS} columns")
    names = [c.strip() for c in cells]
    index: dict[str, int] = {}
    for n, name in enumerate(names):
        if not name:
            continue
        key = "address" if name.lower() == "address" else name
        if key in index:
            raise InvalidValue(f"file: the header names the column {name!r} twice")
        index[key] = n
    if "address" not in index:
        raise InvalidValue(
            "file: the first row must be the header, with an `address` column and one "
            "column per template parameter (GET /v1/tasks/sample?template_id=… has one)"
        )
    missing = [p for p in params if p not in index]
    if missing:
        raise MissingMacros(f"file: no column for template parameters: {', '.join(missing)}")
    return Header(index.pop("address"), {p: index[p] for p in params})


def check_row(
    number: int, cells: Sequence[str], header: Header, template: Content
) -> tuple[dict[str, Any] | None, dict[str, Any] | None]:
    """(recipient, None) or (None, invalid row), or (None, None) for an empty row."""
    if not any(c.strip() for c in cells):
        return None, None

    def cell(n: int) -> str:
        return cells[n] if n < len(cells) else ""

    raw = cell(header.address).strip()
    try:
        address = parse_mailbox(raw, field="address").address
    except (InvalidValue, InvalidEmail) as exc:
        return None, {"row": number, "address": raw[:320], "reason": exc.description}
    variables = {name: cell(n) for name, n in header.columns.items()}
    empty = [name for name, value in variables.items() if not value.strip()]
    if empty:
        reason = f"no value for template parameters: {', '.join(empty)}"
        return None, {"row": number, "address": address, "reason": reason}
    too_long = [name for name, value in variables.items() if len(value) > MAX_CELL_CHARS]
    if too_long:
        reason = f"longer than {MAX_CELL_CHARS} characters: {', '.join(too_long)}"
        return None, {"row": number, "address": address, "reason": reason}
    try:
        check_values(template, variables)
    except (InvalidValue, MissingMacros) as exc:
        return None, {"row": number, "address": address, "reason": exc.description}
    return {"row": number, "address": address, "variables": variables}, None
