"""Pure parts of tasks: typed-in rows checked and numbered, the sample recipients file."""

from __future__ import annotations

import csv
import io

from postwire_ingest.tasks import sample_csv, typed_recipients


def test_bad_and_repeated_rows_are_reported_with_their_numbers() -> None:
    valid, invalid = typed_recipients(
        [
            ("Ann <ann@example.org>", {"name": "Ann"}),
            ("nope", {}),
            ("bob@example.net", {}),
            ("ANN@example.org", {"name": "again"}),
        ]
    )
    assert valid == [
        {"row": 1, "address": "ann@example.org", "variables": {"name": "Ann"}},
        {"row": 3, "address": "bob@example.net", "variables": {}},
    ]
    assert [(r["row"], r["address"]) for r in invalid] == [(2, "nope"), (4, "ANN@example.org")]
    assert invalid[1]["reason"] == "duplicate of row 1"
    assert "@" in invalid[0]["reason"]


def test_the_sample_file_has_a_column_per_parameter() -> None:
    rows = list(csv.reader(io.StringIO(sample_csv(("name", "code")))))
    assert rows == [["address", "name", "code"], ["someone@example.com", "<name>", "<code>"]]
    assert list(csv.reader(io.StringIO(sample_csv(())))) == [
        ["address"],
        ["someone@example.com"],
    ]
