"""The MIME body of a message: text, HTML and attachments, 7-bit, CRLF line ends.

Written directly instead of through ``email.message.EmailMessage``, which spent a quarter
of ingest's CPU on its header registry for every request. The output is what any MUA
parses: ``text/plain`` and ``text/html`` parts in UTF-8, as 7bit when they are ASCII with
short lines and quoted-printable otherwise; attachments in base64 with RFC 2231 file
names; ``multipart/alternative`` for text and HTML, inside ``multipart/mixed`` when there
are attachments. Boundaries are random, and neither quoted-printable nor base64 output can
contain them.
"""

from __future__ import annotations

import base64
import binascii
import re
import secrets
from collections.abc import Sequence
from typing import Protocol
from urllib.parse import quote

CRLF = b"\r\n"
_LINE_ENDS = re.compile(rb"\r\n|\r|\n")
_TOKEN_SAFE = re.compile(r"[A-Za-z0-9!#$&+.^_`|~-]+")


class File(Protocol):
    @property
    def filename(self) -> str: ...

    @property
    def data(self) -> bytes: ...

    @property
    def content_type(self) -> str: ...


def body(text: str | None, html: str | None, attachments: Sequence[File]) -> bytes:
    """``MIME-Version``, ``Content-*`` headers, a blank line and the encoded content."""
    if text is not None and html:
        main = _multipart("alternative", [_text(text, "plain"), _text(html, "html")])
    elif text is not None:
        main = _text(text, "plain")
    else:
        main = _text(html or "", "html")
    if attachments:
        main = _multipart("mixed", [main, *(_attachment(a) for a in attachments)])
    return b"MIME-Version: 1.0\r\n" + main


def _text(text: str, subtype: str) -> bytes:
    data = _LINE_ENDS.sub(b"\r\n", text.encode("utf-8"))
    if not data.endswith(CRLF):
        data += CRLF
    head = f'Content-Type: text/{subtype}; charset="utf-8"\r\n'.encode()
    if data.isascii() and max(map(len, data.split(CRLF))) <= 998:
        return head + b"Content-Transfer-Encoding: 7bit\r\n\r\n" + data
    # b2a_qp works on LF lines: it keeps them as hard line breaks and encodes trailing
    # white space, "=" and non-ASCII; its soft breaks keep lines within 76 characters.
    encoded = binascii.b2a_qp(data.replace(CRLF, b"\n"), istext=True)
    return (
        head + b"Content-Transfer-Encoding: quoted-printable\r\n\r\n" + encoded.replace(b"\n", CRLF)
    )


def _attachment(file: File) -> bytes:
    encoded = base64.encodebytes(file.data).replace(b"\n", CRLF)
    return (
        f"Content-Type: {file.content_type}\r\n"
        "Content-Transfer-Encoding: base64\r\n"
        f"Content-Disposition: attachment;{_filename(file.filename)}\r\n\r\n"
    ).encode("ascii") + encoded


def _filename(name: str) -> str:
    """The ``filename`` parameter: a quoted string when it is short printable ASCII,
    RFC 2231 percent-encoded UTF-8 in continuations of at most 60 characters otherwise."""
    if name.isascii() and name.isprintable() and len(name) <= 60 and '"' not in name:
        escaped = name.replace("\\", "\\\\")
        return f' filename="{escaped}"'
    encoded = "utf-8''" + quote(name, safe="")
    pieces = [encoded[i : i + 60] for i in range(0, len(encoded), 60)]
    # A cut must not split a %XX escape: move the split to before the '%'.
    for n in range(len(pieces) - 1):
        cut = pieces[n].rfind("%", len(pieces[n]) - 2)
        if cut != -1:
            pieces[n + 1] = pieces[n][cut:] + pieces[n + 1]
            pieces[n] = pieces[n][:cut]
    return ";".join(f"\r\n filename*{n}*={piece}" for n, piece in enumerate(pieces))


def _multipart(subtype: str, parts: list[bytes]) -> bytes:
    boundary = "=_pw_" + secrets.token_hex(16)
    delimiter = f"--{boundary}\r\n".encode()
    out = [f'Content-Type: multipart/{subtype}; boundary="{boundary}"\r\n\r\n'.encode()]
    for part in parts:
        out.append(delimiter)
        out.append(part)
        out.append(CRLF)  # the CRLF before a delimiter belongs to it (RFC 2046 5.1.1)
    out.append(f"--{boundary}--\r\n".encode())
    return b"".join(out)
