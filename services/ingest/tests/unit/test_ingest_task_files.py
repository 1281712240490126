"""Recipients files read row by row: formats by content, the header's rules, each row's
checks with spreadsheet row numbers, and files built to exhaust memory refused."""

from __future__ import annotations

import io
import zipfile
from dataclasses import dataclass

import pytest
from openpyxl import Workbook

from postwire_common.errors import InvalidValue, MissingMacros
from postwire_ingest.task_files import (
    FileFormat,
    Header,
    RowError,
    check_archive,
    check_row,
    read_header,
    rows,
    sniff,
)


@dataclass
class Tpl:
    subject: str = "For {{name}}"
    text: str | None = "Code {{code}}"
    html: str | None = None


def xlsx(data: list[list[object]]) -> bytes:
    book = Workbook(write_only=True)
    sheet = book.create_sheet()
    for row in data:
        sheet.append(row)
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


def read(data: bytes) -> list[tuple[int, list[str]]]:
    return list(rows(io.BytesIO(data), sniff(data[:8192])))


def test_the_format_is_found_by_content_not_by_name() -> None:
    assert sniff(b"address,name\r\n") is FileFormat.CSV
    assert sniff(xlsx([["address"]])[:8192]) is FileFormat.XLSX
    with pytest.raises(InvalidValue, match="neither CSV"):
        sniff(b"\x7fELF\x02\x01\x01\x00\x00")


def test_csv_rows_are_numbered_as_a_spreadsheet_numbers_them() -> None:
    data = '\ufeffaddress;name\r\na@example.org;Ann\r\n\r\n"b@example.org";"Bob; Jr."\r\n'
    assert read(data.encode()) == [
        (1, ["address", "name"]),
        (2, ["a@example.org", "Ann"]),
        (3, []),
        (4, ["b@example.org", "Bob; Jr."]),
    ]


def test_xlsx_rows_keep_their_numbers_across_empty_rows_and_typed_cells() -> None:
    data = xlsx([["address", "n"], ["a@example.org", 42], [None, None], ["b@example.org", 1.5]])
    found = read(data)
    assert [n for n, _ in found] == [1, 2, 3, 4]
    assert found[1][1] == ["a@example.org", "42"]
    assert found[3][1] == ["b@example.org", "1.5"]


def test_a_csv_that_is_not_utf8_fails_naming_the_row() -> None:
    data = "address\r\na@example.org\r\nM\u00fcller@example.org\r\n".encode("latin-1")
    with pytest.raises(RowError) as found:
        read(data)
    assert found.value.row == 3  # the row itself, though a decoder reads ahead
    assert "UTF-8" in found.value.reason


def test_the_header_needs_an_address_column_and_every_parameter() -> None:
    header = read_header(["Name", " ADDRESS ", "code", "extra"], ["Name", "code"])
    assert header == Header(address=1, columns={"Name": 0, "code": 2})
    with pytest.raises(InvalidValue, match="`address` column"):
        read_header(["email", "name"], ["name"])
    with pytest.raises(MissingMacros, match="code, other"):
        read_header(["address", "name"], ["name", "code", "other"])
    with pytest.raises(InvalidValue, match="twice"):
        read_header(["address", "name", "name"], ["name"])


def test_each_row_is_checked_and_reported_with_its_number() -> None:
    header = read_header(["address", "name", "code"], ["name", "code"])
    good, bad = check_row(2, ["Ann@Example.ORG", "Ann", "A1"], header, Tpl())
    assert bad is None
    assert good == {
        "row": 2,
        "address": "Ann@example.org",
        "variables": {"name": "Ann", "code": "A1"},
    }
    assert check_row(3, ["", " ", ""], header, Tpl()) == (None, None)  # empty: skipped
    _, bad = check_row(4, ["not an address", "X", "1"], header, Tpl())
    assert bad is not None
    assert (bad["row"], bad["address"]) == (4, "not an address")
    _, bad = check_row(5, ["c@example.org", "C"], header, Tpl())  # a short row
    assert bad == {"row": 5, "address": "c@example.org",
                   "reason": "no value for template parameters: code"}  # fmt: skip
    _, bad = check_row(6, ["d@example.org", "D\r\nBcc: x@evil.example", "1"], header, Tpl())
    assert bad is not None
    assert "subject" in bad["reason"]  # a value used in the subject cannot add a header


def test_a_value_is_data_never_a_template() -> None:
    header = read_header(["address", "name", "code"], ["name", "code"])
    good, _ = check_row(2, ["e@example.org", "{{code}}", "${7*7}"], header, Tpl())
    assert good is not None
    assert good["variables"] == {"name": "{{code}}", "code": "${7*7}"}


def test_an_archive_whose_parts_expand_too_far_is_refused_before_reading() -> None:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("[Content_Types].xml", "<Types/>")
        archive.writestr("xl/sharedStrings.xml", b"\x00" * (64 * 1024 * 1024 + 1))
    assert len(out.getvalue()) < 1024 * 1024  # tiny on the wire
    with pytest.raises(InvalidValue, match=r"sharedStrings\.xml expands"):
        check_archive(io.BytesIO(out.getvalue()))
    with pytest.raises(InvalidValue, match="expands"):
        read(out.getvalue())


def test_an_xml_entity_bomb_is_refused() -> None:
    laughs = (
        '<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol">'
        '<!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">'
        '<!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">]>'
        '<worksheet xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main">'
        '<sheetData><row r="1"><c r="A1" t="inlineStr"><is><t>&lol3;</t></is></c></row>'
        "</sheetData></worksheet>"
    )
    base = io.BytesIO(xlsx([["address"], ["a@example.org"]]))
    out = io.BytesIO()
    with zipfile.ZipFile(base) as source, zipfile.ZipFile(out, "w") as target:
        for item in source.infolist():
            bomb = item.filename.startswith("xl/worksheets/sheet")
            target.writestr(item, laughs if bomb else source.read(item.filename))
    with pytest.raises(RowError, match="XLSX"):
        read(out.getvalue())
