"""Forbidden attachment extensions found in every MIME part of an SMTP message, whatever
the trick: how the name is written and encoded, where the part is, files that are not
parts; benign and broken mail passes without an error."""

from __future__ import annotations

import base64
import binascii
import random

import pytest

from postwire_ingest.attachments import FORBIDDEN_EXTENSIONS
from postwire_ingest.submission.parts import TooComplex, forbidden_attachment

HEAD = b"From: a@example.com\r\nTo: b@example.com\r\nSubject: t\r\nMIME-Version: 1.0\r\n"
TEXT = b"Content-Type: text/plain; charset=utf-8\r\n\r\nHello.\r\n"
EXE = b"TVqQAAMAAAAEAAAA//8AALgAAAAAAAAAQAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA\r\n"


def crlf(text: str) -> bytes:
    return text.replace("\n", "\r\n").encode()


def attachment(headers: bytes | str, data: bytes = EXE) -> bytes:
    """A base64 part under the given header lines."""
    if isinstance(headers, str):
        headers = crlf(headers)
    return headers + b"\r\nContent-Transfer-Encoding: base64\r\n\r\n" + data


def multipart(*parts: bytes, boundary: str = "b1", subtype: str = "mixed") -> bytes:
    """A multipart entity (its headers and body) of the given parts, closing delimiter
    included."""
    delimiter = b"--" + boundary.encode()
    lines = [f'Content-Type: multipart/{subtype}; boundary="{boundary}"'.encode(), b""]
    lines.append(b"This is a multi-part message in MIME format.")
    for part in parts:
        lines += [delimiter, part]
    lines.append(delimiter + b"--")
    return b"\r\n".join(lines) + b"\r\n"


def mail(entity: bytes) -> bytes:
    return HEAD + entity


def with_attachment(headers: bytes | str) -> bytes:
    return mail(multipart(TEXT, attachment(headers)))


def forwarded(message: bytes, encoding: str | None = None) -> bytes:
    """A message that forwards the given one as a message/rfc822 attachment."""
    if encoding == "base64":
        body = base64.encodebytes(message).replace(b"\n", b"\r\n")
        headers = b"Content-Type: message/rfc822\r\nContent-Transfer-Encoding: base64\r\n\r\n"
    else:
        body, headers = message, b"Content-Type: message/rfc822\r\n\r\n"
    return mail(multipart(TEXT, headers + body, boundary=f"fwd{len(message)}"))


def uuencoded(name: bytes, data: bytes = b"MZ\x90\x00 not really a program") -> bytes:
    lines = [binascii.b2a_uu(data[i : i + 45]).rstrip(b"\n") for i in range(0, len(data), 45)]
    return b"\r\n".join([b"begin 644 " + name, *lines, b"`", b"end"]) + b"\r\n"


@pytest.mark.parametrize(
    "headers",
    [
        'Content-Type: image/png\nContent-Disposition: attachment; filename="a.exe"',
        'Content-Type: image/png\nContent-Disposition: inline; filename="a.exe"',
        'Content-Type: application/octet-stream; name="a.exe"',
        "Content-Disposition: attachment; filename=a.exe",  # a token, and no Content-Type
        'Content-Type: x/pdf; name="a.exe"\nContent-Disposition: attachment; filename=a.pdf',
        'Content-Type: x/pdf; name="a.pdf"\nContent-Disposition: attachment; filename=a.exe',
        'Content-Disposition: attachment;\n filename="a.pdf"; filename="a.exe"',  # repeated
        "Content-Disposition: attachment; filename=a.pdf\nContent-Disposition: attachment; "
        "filename=a.exe",  # a second header
        'Content-Disposition: attachment; FileName="a.exe"',
    ],
)
def test_a_name_is_found_in_every_parameter_and_header(headers: str) -> None:
    assert forbidden_attachment(with_attachment(headers)) == ".exe"


@pytest.mark.parametrize(
    ("filename", "found"),
    [
        ("A.EXE", ".exe"),
        ("invoice.pdf.exe", ".exe"),
        ("a.exe.", ".exe"),
        ("a.exe  ", ".exe"),
        ("a.exe::$DATA", ".exe"),
        ("ａ．ｅｘｅ", ".exe"),  # fullwidth, as raw UTF-8
        ("run.PS1", ".ps1"),
    ],
)
def test_a_name_is_judged_as_windows_saves_it(filename: str, found: str) -> None:
    headers = f'Content-Disposition: attachment; filename="{filename}"'
    assert forbidden_attachment(with_attachment(headers)) == found


@pytest.mark.parametrize(
    ("params", "found"),
    [
        ("filename*=utf-8''evil%2Eexe", ".exe"),
        ("filename*=UTF-8'en'%EF%BD%85vil.%EF%BD%85xe", ".exe"),  # fullwidth e
        ("filename*0*=utf-8''ev; filename*1=il.exe", ".exe"),
        ('filename*0="invoice.pdf"; filename*1=".exe"', ".exe"),
        ("filename*=''a.bat", ".bat"),
        ("filename*=a.cmd", ".cmd"),
        ("filename*=x-unknown''a.scr", ".scr"),
        ("filename*=utf-7''a+AC4-exe", ".exe"),  # "+AC4-" is "." in UTF-7
        ("filename*=''a.pdf; filename*0=a.exe", ".exe"),  # numbered and unnumbered mixed
    ],
)
def test_rfc_2231_names_are_decoded(params: str, found: str) -> None:
    assert (
        forbidden_attachment(with_attachment(f"Content-Disposition: attachment; {params}")) == found
    )


@pytest.mark.parametrize(
    "filename",
    [
        "=?utf-8?B?" + base64.b64encode(b"x.exe").decode() + "?=",
        "=?utf-8?Q?x=2Eexe?=",
        "=?UTF-8?q?x=2E?= =?UTF-8?q?exe?=",  # two words: the space between goes
        "=?utf-8?B?eC4=?=\n =?utf-8?B?ZXhl?=",  # and folded between them
        "=?utf-8*en?Q?x.exe?=",  # an RFC 2231 language in the charset
        "=?x-unknown?Q?x.exe?=",
        "report =?utf-8?Q?x.exe?=",
    ],
)
def test_rfc_2047_encoded_words_in_a_quoted_name_are_decoded(filename: str) -> None:
    disposition = f'Content-Disposition: attachment; filename="{filename}"'
    assert forbidden_attachment(with_attachment(disposition)) == ".exe"
    content_type = f'Content-Type: application/octet-stream; name="{filename}"'
    assert forbidden_attachment(with_attachment(content_type)) == ".exe"


@pytest.mark.parametrize(
    "name",
    [
        b"evil\xff.exe",  # not UTF-8 at all
        "ｅｖｉｌ．ｅｘｅ".encode(),  # UTF-8, undeclared
        b"evil\x85exe",  # Windows-1252 ellipsis, folded to "..."
    ],
)
def test_raw_8bit_names_are_read_as_clients_read_them(name: bytes) -> None:
    headers = b'Content-Disposition: attachment; filename="' + name + b'"'
    assert forbidden_attachment(with_attachment(headers)) == ".exe"


def test_an_attachment_two_forwards_deep_is_found() -> None:
    evil = with_attachment('Content-Disposition: attachment; filename="a.exe"')
    assert forbidden_attachment(forwarded(forwarded(evil))) == ".exe"


def test_a_base64_encoded_forward_is_decoded_and_read() -> None:
    evil = with_attachment('Content-Disposition: attachment; filename="a.exe"')
    assert forbidden_attachment(forwarded(evil, encoding="base64")) == ".exe"
    assert forbidden_attachment(forwarded(forwarded(evil, "base64"), "base64")) == ".exe"


def test_quoted_printable_forwards_and_base64_multiparts_are_decoded() -> None:
    qp = b'Content-Disposition: attachment; filename=3D"a.exe"'
    part = b"Content-Type: message/rfc822\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n"
    inner = (
        HEAD + b"Content-Type: multipart/mixed; boundary=q\r\n\r\n--q\r\n" + qp + b"\r\n\r\nx\r\n"
    )
    assert forbidden_attachment(mail(multipart(TEXT, part + inner))) == ".exe"
    entity = multipart(TEXT, attachment("Content-Type: x/y; name=a.exe"), boundary="in")
    headers, inner_body = entity.split(b"\r\n\r\n", 1)
    mixed = (
        headers + b"\r\nContent-Transfer-Encoding: base64\r\n\r\n" + base64.encodebytes(inner_body)
    )
    assert forbidden_attachment(mail(mixed)) == ".exe"


def test_digest_parts_are_messages_by_default() -> None:
    evil = with_attachment('Content-Disposition: attachment; filename="a.exe"')
    assert forbidden_attachment(mail(multipart(b"\r\n" + evil, subtype="digest"))) == ".exe"


@pytest.mark.parametrize(
    "body",
    [
        uuencoded(b"evil.exe"),
        uuencoded(b"EVIL.EXE  "),
        b"=ybegin line=128 size=10 name=evil.exe\r\nxxxxxxxxxx\r\n=yend size=10\r\n",
    ],
)
def test_uuencoded_and_yenc_files_in_a_text_body_are_found(body: bytes) -> None:
    text = b"See the file below.\r\n\r\n" + body + b"\r\nBye.\r\n"
    assert forbidden_attachment(HEAD + b"\r\n" + text) == ".exe"  # not MIME at all
    part = b"Content-Type: text/plain\r\n\r\n" + text
    assert forbidden_attachment(mail(multipart(part, TEXT))) == ".exe"
    encoded = b"Content-Type: text/plain\r\nContent-Transfer-Encoding: base64\r\n\r\n"
    assert forbidden_attachment(mail(multipart(encoded + base64.encodebytes(text)))) == ".exe"
    top = HEAD + encoded + base64.encodebytes(text)
    assert forbidden_attachment(top) == ".exe"  # the fast path must not skip it


def test_a_single_part_message_that_is_the_attachment_is_found() -> None:
    assert forbidden_attachment(HEAD + attachment("Content-Type: x/y; name=a.exe")) == ".exe"
    disposition = "Content-Disposition: attachment; filename*=utf-8''a.exe"
    assert forbidden_attachment(HEAD + attachment(disposition)) == ".exe"


PDF = 'Content-Disposition: attachment; filename="invoice.pdf"'
PHOTO = "Content-Disposition: attachment; filename*=utf-8''%E5%86%99%E7%9C%9F.png"


def test_a_benign_message_has_nothing() -> None:
    alternative = multipart(
        TEXT,
        b"Content-Type: text/html; charset=utf-8\r\n\r\n<p>Hello <img src=cid:logo></p>\r\n",
        boundary="alt",
        subtype="alternative",
    )
    logo = attachment(
        "Content-Type: image/png; name=logo.png\nContent-ID: <logo>\n"
        'Content-Disposition: inline; filename="logo.png"'
    )
    related = multipart(alternative, logo, boundary="rel", subtype="related")
    message = mail(
        multipart(
            related,
            attachment('Content-Type: application/pdf; name="invoice.pdf"\n' + PDF),
            attachment("Content-Type: image/png\n" + PHOTO),
            b"Content-Type: text/plain\r\n\r\nbegin the meeting at 10\r\nbeginning\r\n",
        )
    )
    assert forbidden_attachment(message) is None
    assert forbidden_attachment(forwarded(message, "base64")) is None


def test_a_plain_message_has_nothing() -> None:
    assert (
        forbidden_attachment(HEAD + b"\r\n" + b"Hello, see setup.exe on the share.\r\n" * 40)
        is None
    )
    assert forbidden_attachment(b"Subject: no MIME at all\r\n\r\nbegin 644\r\n") is None
    assert forbidden_attachment(b"") is None


def nested(levels: int) -> bytes:
    """An attachment inside a message inside `levels` message/rfc822 parts."""
    message = with_attachment('Content-Disposition: attachment; filename="a.exe"')
    for _ in range(levels):
        message = HEAD + b"Content-Type: message/rfc822\r\n\r\n" + message
    return message


def test_nesting_is_read_ten_messages_deep_and_deeper_is_refused() -> None:
    assert forbidden_attachment(nested(10)) == ".exe"
    for levels in (11, 50):  # not passed with a part unread; no RecursionError
        with pytest.raises(TooComplex, match="nested more than 10"):
            forbidden_attachment(nested(levels))


def test_more_parts_than_are_read_is_refused() -> None:
    many = b"".join(b"--b\r\nContent-Type: text/plain\r\n\r\nx\r\n" for _ in range(1001))
    message = MIXED + many + b"--b--\r\n"
    with pytest.raises(TooComplex, match="more than 1000 MIME parts"):
        forbidden_attachment(message)
    fewer = MIXED + many[: len(many) // 1001 * 900] + b"--b--\r\n"
    assert forbidden_attachment(fewer) is None


def test_deep_multipart_nesting_ends_without_recursion() -> None:
    message = attachment('Content-Disposition: attachment; filename="a.exe"')
    for level in range(2000):  # far past Python's recursion limit for its own parser
        message = multipart(message, boundary=f"n{level}")
    with pytest.raises(TooComplex, match="nested more than 50"):
        forbidden_attachment(mail(message))
    shallow = attachment('Content-Disposition: attachment; filename="a.exe"')
    for level in range(20):
        shallow = multipart(shallow, boundary=f"n{level}")
    assert forbidden_attachment(mail(shallow)) == ".exe"


MIXED = HEAD + b"Content-Type: multipart/mixed; boundary=b\r\n\r\n"
EVIL = attachment("Content-Type: x/y; name=a.exe")
MALFORMED = {
    "no closing delimiter: the last part runs to the end": (
        MIXED + b"--b\r\n" + TEXT + b"--b\r\n" + EVIL,
        ".exe",
    ),
    "no closing delimiter, benign": (MIXED + b"--b\r\n" + TEXT, None),
    "a part after the closing delimiter, which some clients still show": (
        mail(multipart(TEXT, boundary="b")) + b"--b\r\n" + EVIL,
        ".exe",
    ),
    "a line that ends Python's header block but not a lenient client's": (
        MIXED + b"--b\r\nContent-Type: x/y\r\n\x00\xff garbage\r\n"
        b"Content-Disposition: attachment; filename=a.exe\r\n\r\nx\r\n--b--\r\n",
        ".exe",
    ),
    "'Content-Type :', a header to RFC 822 and lenient clients": (
        MIXED.replace(b"Content-Type:", b"Content-Type :") + b"--b\r\n" + EVIL + b"\r\n--b--\r\n",
        ".exe",
    ),
    "two Content-Type headers and two boundaries, each followed": (
        HEAD + b"Content-Type: text/plain\r\n"
        b"Content-Type: multipart/mixed; boundary=x; boundary=b\r\n\r\n"
        b"--b\r\n" + EVIL + b"\r\n--b--\r\n",
        ".exe",
    ),
    "bare CR line ends, which Python's parser honours": (
        with_attachment("Content-Type: x/y; name=a.exe").replace(b"\r\n", b"\r"),
        ".exe",
    ),
    "bare LF line ends": (
        with_attachment("Content-Type: x/y; name=a.exe").replace(b"\r\n", b"\n"),
        ".exe",
    ),
    "a multipart without a boundary, read as text": (
        HEAD + b"Content-Type: multipart/mixed\r\n\r\n" + uuencoded(b"a.exe"),
        ".exe",
    ),
    "garbage headers and an empty boundary": (
        b'\xff\xfe\x00garbage\r\n: \r\n \r\nContent-Type: multipart/mixed; boundary=""\r\n'
        b"\r\n--\r\nx",
        None,
    ),
    "an unterminated quote": (
        with_attachment('Content-Disposition: attachment; filename="a.exe'),
        ".exe",
    ),
    "an encoded word that is not base64": (
        with_attachment('Content-Disposition: attachment; filename="=?utf-8?B?!!!?="'),
        None,
    ),
    "RFC 2231 bytes that are not UTF-8": (
        with_attachment("Content-Disposition: attachment; filename*=utf-8''%ff%fe.pdf"),
        None,
    ),
    "raw bytes that are not UTF-8": (
        with_attachment(b'Content-Type: x/y; name="\xff\xfe\xfd.pdf"'),
        None,
    ),
    "a base64 message/rfc822 that is not base64": (
        HEAD + b"Content-Type: message/rfc822\r\nContent-Transfer-Encoding: base64\r\n\r\n!!x",
        None,
    ),
}


@pytest.mark.parametrize(("message", "found"), MALFORMED.values(), ids=MALFORMED.keys())
def test_malformed_mime_does_not_raise(message: bytes, found: str | None) -> None:
    assert forbidden_attachment(message) == found


def test_random_damage_never_raises() -> None:
    sample = forwarded(
        mail(
            multipart(
                TEXT,
                attachment(
                    "Content-Disposition: attachment; filename*0*=utf-8''a%2E; filename*1=exe"
                ),
            )
        ),
        "base64",
    )
    rng = random.Random(5322)
    for _ in range(300):
        damaged = bytearray(sample)
        for _ in range(rng.randint(1, 20)):
            at = rng.randrange(len(damaged))
            damaged[at : at + rng.randint(0, 8)] = rng.randbytes(rng.randint(0, 8))
        found = forbidden_attachment(bytes(damaged))
        assert found is None or found in FORBIDDEN_EXTENSIONS
