"""The attachment policy: names judged as Windows saves them, declared types judged as
leaf, non-executable MIME types."""

from __future__ import annotations

import pytest

from postwire_common.errors import InvalidValue
from postwire_ingest import attachments
from postwire_ingest.compose import check_custom_headers


@pytest.mark.parametrize(
    ("filename", "extension"),
    [
        ("evil.exe::$DATA", ".exe"),
        ("evil.exe:stream", ".exe"),
        ("run.ps1", ".ps1"),
        ("setup.MSI", ".msi"),
        ("disk.iso", ".iso"),
        ("ｅｖｉｌ．ｅｘｅ", ".exe"),  # fullwidth: NFKC folds it to evil.exe
        ("invoice.pdf.exe .", ".exe"),
        ("dir\\evil.bat", ".bat"),
        ("dir/evil.vbs", ".vbs"),
    ],
)
def test_executable_names_are_refused_however_written(filename: str, extension: str) -> None:
    with pytest.raises(InvalidValue) as caught:
        attachments.check_filename(filename)
    assert caught.value.description == f"Not allowed attachement type {extension}"


@pytest.mark.parametrize("filename", ["report.pdf", "photo.jpeg", "archive.tar.gz", "README"])
def test_ordinary_names_pass(filename: str) -> None:
    attachments.check_filename(filename)


@pytest.mark.parametrize(
    "declared",
    [
        "multipart/mixed",
        "message/rfc822",
        "Message/Partial",
        "application/x-msdownload",
        "application/vnd.microsoft.portable-executable",
        "text/javascript",
        "example/thing",
    ],
)
def test_containers_executables_and_unknown_top_level_types_are_refused(declared: str) -> None:
    with pytest.raises(InvalidValue):
        attachments.content_type("a.bin", declared)


@pytest.mark.parametrize(
    ("declared", "kind"),
    [
        (None, "application/octet-stream"),
        ("Application/PDF", "application/pdf"),
        ("image/png", "image/png"),
        ("text/csv", "text/csv"),
        ("font/woff2", "font/woff2"),
    ],
)
def test_leaf_types_pass(declared: str | None, kind: str) -> None:
    assert attachments.content_type("a", declared) == kind


@pytest.mark.parametrize(
    "name",
    [
        "Authentication-Results",
        "ARC-Seal",
        "arc-message-signature",
        "ARC-Authentication-Results",
        "DKIM-Signature",
        "Resent-From",
        "resent-date",
        "Received-SPF",
        "X-Postwire-Anything",
    ],
)
def test_headers_that_carry_trust_are_reserved(name: str) -> None:
    with pytest.raises(InvalidValue):
        check_custom_headers({name: "pass"})


def test_ordinary_custom_headers_pass() -> None:
    headers = {"X-Campaign": "spring", "Reply-To": "help@example.org", "List-Id": "<a.b>"}
    assert check_custom_headers(headers) == headers
