"""Forbidden attachment extensions in a message as received over SMTP, in every MIME part.

A mail client saves an attachment under whatever name it can make of the part, so every
trick below is a way to hide ``.exe`` from a filter that reads less than the client does:

* Where the name is: ``filename`` of ``Content-Disposition`` (``attachment``, ``inline``
  or no disposition at all) and ``name`` of ``Content-Type``. Every such parameter and
  every repeated header counts, because clients disagree on which one wins.
* How the name is spelled: upper case, a double extension, trailing dots and spaces, an
  NTFS stream and fullwidth letters, all folded by ``attachments.extension`` the way
  Windows saves the file.
* How the name is encoded: RFC 2231 (``filename*=utf-8''evil%2Eexe``, numbered sections,
  an empty charset), RFC 2047 encoded words inside the quotes (not allowed there, but
  most clients decode them anyway), and raw 8-bit bytes. Raw bytes are read
  both as UTF-8 and as Windows-1252, whose ``…`` folds to ``...``.
* Where the part is: inside ``multipart/*`` and ``message/*`` parts nested in one another,
  including a base64 or quoted-printable container, which RFC 2046 forbids but clients
  decode anyway, and parts after a closing delimiter. Python's parser stops reading
  headers at a line that is not a header or at ``Content-Type :``; lenient clients read
  on, so such lines are dropped or mended before parsing. Duplicate ``Content-Type``
  headers and ``boundary`` parameters are all followed, and bare CRs count as line ends,
  as they do for Python.
* Files that are not MIME parts: uuencoded (``begin 644 evil.exe``) and yEnc
  (``=ybegin ... name=evil.exe``) blocks in a text body, which clients such as
  Thunderbird turn into attachments.

A hostile message costs bounded time and no recursion. A message with more than 10 levels
of ``message/*``, 50 nested containers or 1000 parts is :class:`TooComplex`: it cannot be
vouched for, so it is refused rather than passed with a part unread.

Most mail has none of this, so a message whose top-level header block names no container
type, file name or transfer encoding, and which has no line starting with ``begin`` or
``=ybegin``, is answered without parsing.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Iterable
from email.errors import HeaderParseError
from email.header import decode_header
from email.message import Message
from email.parser import BytesHeaderParser
from email.policy import compat32
from email.utils import decode_params, unquote
from typing import NamedTuple

from postwire_ingest.attachments import FORBIDDEN_EXTENSIONS, extension

_MAX_MESSAGES = 10  # message/* within message/*: forwards of forwards
_MAX_NESTING = 50  # containers of either kind within one another
_MAX_PARTS = 1000  # parts read in all

# The fast path reads lowered bytes: substring and literal-prefix searches skip along in C,
# where IGNORECASE or an alternation would step byte by byte (20-60 µs for 2 KB).
_FAST_WORDS = (b"multipart", b"base64", b"quoted-printable")
_FAST_HEAD = (re.compile(rb"message\s*/"), re.compile(rb"name\s*[*=]"))
_FAST_BODY = (re.compile(rb"\n(?:=y)?begin"), re.compile(rb"\r(?:=y)?begin"))
_HEAD_END = re.compile(rb"\n\r?\n")
_EOL = re.compile(rb"\r?\n")
_BARE_CR = re.compile(rb"\r(?!\n)")
_SPACE_BEFORE_COLON = re.compile(rb"^([\x21-\x39\x3b-\x7e]+)[ \t]+:", re.M)
_NOT_A_HEADER = re.compile(rb"^(?![\x21-\x39\x3b-\x7e]*:|[ \t]).*\n?", re.M)
_FOLD = re.compile(r"\r?\n(?=[ \t])")
_PARAM = re.compile(r'(?:[^;"]|"(?:\\.|[^"\\])*"?)+')  # split at ";" outside quotes
_ENCODED_FILE = re.compile(
    rb"^(?:begin(?:-base64)?[ \t]+[0-7]{1,4}[ \t]+|=ybegin[ \t].*?\bname=)(.+?)\r?$", re.I | re.M
)
_UUENCODE = frozenset({"x-uuencode", "uuencode", "x-uue", "uue"})
_HEADERS = BytesHeaderParser(policy=compat32)

_Param = str | tuple[str | None, str | None, str]


class TooComplex(ValueError):
    """The message nests deeper, or has more parts, than is scanned."""


class _Part(NamedTuple):
    buf: bytes
    start: int
    end: int
    messages: int  # message/* levels above this part
    nesting: int  # containers above this part
    default: str  # content type when none is declared (message/rfc822 in a digest)


def forbidden_attachment(raw: bytes) -> str | None:
    """The first forbidden extension (lower case with its dot, e.g. ".exe") of any file name
    in the message, or None; :class:`TooComplex` past the limits."""
    if _plain(raw):
        return None
    raw = _BARE_CR.sub(b"\r\n", raw)  # one idea of a line for Python and the regexes alike
    stack = [_Part(raw, 0, len(raw), 0, 0, "text/plain")]
    for _ in range(_MAX_PARTS):
        if not stack:
            break
        found, inner = _visit(stack.pop())
        if found:
            return found
        stack.extend(reversed(inner))  # depth first, in document order
    if stack:
        raise TooComplex(f"more than {_MAX_PARTS} MIME parts")
    return None


def _plain(raw: bytes) -> bool:
    """Nothing a client could save: no MIME structure, file name or encoded file."""
    lowered = raw.lower()
    blank = _HEAD_END.search(lowered)
    head = lowered[: blank.end()] if blank else lowered
    if any(word in head for word in _FAST_WORDS) or any(p.search(head) for p in _FAST_HEAD):
        return False
    if b"begin" not in lowered:  # rare in mail: spares the line-start searches below
        return True
    starts = lowered.startswith((b"begin", b"=ybegin"))
    return not starts and not any(p.search(lowered) for p in _FAST_BODY)


def _visit(part: _Part) -> tuple[str | None, list[_Part]]:
    """The part's forbidden file name if it has one, else the parts inside it."""
    headers, body = _headers(part)
    fields = [(name.lower(), _FOLD.sub("", value)) for name, value in headers.raw_items()]
    for name, value in fields:
        if name in ("content-type", "content-disposition"):
            for key, param in _params(value):
                if key in ("name", "filename"):
                    found = _forbidden(*_raw_param(param))
                    if found:
                        return found, []
    types = [value for name, value in fields if name == "content-type"] or [part.default]
    encodings = {
        value.strip().lower() for name, value in fields if name == "content-transfer-encoding"
    }
    encoding = next((e for e in ("base64", "quoted-printable") if e in encodings), None)
    inner: list[_Part] = []
    text = bool(encodings & _UUENCODE)
    for declared in types:
        kind = "".join(declared.split(";", 1)[0].split()).lower()
        if kind.startswith("multipart"):
            parts = _multipart(part, declared, body, encoding, kind == "multipart/digest")
            inner += parts
            text = text or not parts  # a broken multipart is shown as its text
        elif kind.startswith("message"):
            if part.messages >= _MAX_MESSAGES or part.nesting >= _MAX_NESTING:
                raise TooComplex(f"messages nested more than {_MAX_MESSAGES} deep")
            buf, start = (
                (part.buf, body) if encoding is None else (_decoded(part, body, encoding), 0)
            )
            end = part.end if encoding is None else len(buf)
            inner.append(_Part(buf, start, end, part.messages + 1, part.nesting + 1, "text/plain"))
        else:
            text = text or kind.startswith("text") or "/" not in kind
    if text:
        content = part.buf[body : part.end] if encoding is None else _decoded(part, body, encoding)
        matches = _ENCODED_FILE.finditer(content) if b"begin" in content.lower() else ()
        for match in matches:  # the check above is 6 times quicker than the search
            found = _forbidden(match.group(1))
            if found:
                return found, []
    return None, inner


def _headers(part: _Part) -> tuple[Message, int]:
    """The part's header fields, and where its body starts."""
    eol = _EOL.match(part.buf, part.start, part.end)
    if eol:  # an empty first line: no header fields
        return Message(), eol.end()
    blank = _HEAD_END.search(part.buf, part.start, part.end)
    head_end, body = (blank.start() + 1, blank.end()) if blank else (part.end, part.end)
    block = _SPACE_BEFORE_COLON.sub(rb"\1:", part.buf[part.start : head_end])
    return _HEADERS.parsebytes(_NOT_A_HEADER.sub(b"", block)), body


def _multipart(
    part: _Part, declared: str, body: int, encoding: str | None, digest: bool
) -> list[_Part]:
    """The body parts between the delimiter lines of every boundary the part declares."""
    if part.nesting >= _MAX_NESTING:
        raise TooComplex(f"MIME parts nested more than {_MAX_NESTING} deep")
    buf, start, end = part.buf, body, part.end
    if encoding is not None:  # forbidden by RFC 2046, undone by some clients
        buf, start = b"\n" + _decoded(part, body, encoding), 1
        end = len(buf)
    default = "message/rfc822" if digest else "text/plain"
    boundaries = [
        _raw_param(value)[0].rstrip() for key, value in _params(declared) if key == "boundary"
    ]
    inner: list[_Part] = []
    for boundary in dict.fromkeys(boundaries):  # each, in order: clients differ on which wins
        escaped = re.escape(boundary)
        # "\n--boundary", not "^--boundary" under re.M: a literal prefix is searched in C.
        # A body always starts after a line end, so the first delimiter has its "\n" too.
        delimiter = re.compile(rb"\n--" + escaped + rb"(--)?[ \t]*\r?(?=\n|\Z)")
        marks = list(delimiter.finditer(buf, start - 1, end))
        # Every delimiter separates parts, even after a closing one: some clients read on.
        # Without a closing delimiter the last part runs to the end.
        ends = [m.start() for m in marks[1:]] + ([] if marks and marks[-1].group(1) else [end])
        for mark, stop in zip(marks, ends, strict=False):
            begin = min(mark.end() + 1, stop)  # past the line end, left for the next "\n--"
            inner.append(_Part(buf, begin, stop, part.messages, part.nesting + 1, default))
    return inner


def _decoded(part: _Part, body: int, encoding: str) -> bytes:
    """The body with its transfer encoding undone as leniently as the email package does."""
    holder = Message()
    holder["Content-Transfer-Encoding"] = encoding
    holder.set_payload(part.buf[body : part.end].decode("ascii", "surrogateescape"))
    data = holder.get_payload(decode=True)
    return data if isinstance(data, bytes) else b""


def _params(value: str) -> list[tuple[str, _Param]]:
    """A header's parameters with RFC 2231 sections joined and decoded, in order."""
    pairs: list[tuple[str, str]] = []
    for segment in _PARAM.findall(value):
        key, equals, param = segment.partition("=")
        if equals:
            pairs.append((key.strip().lower(), param.strip()))
    try:
        return decode_params([("", ""), *pairs])[1:]
    except TypeError:  # numbered and unnumbered RFC 2231 sections of one name: each alone
        return [decode_params([("", ""), pair])[1] for pair in pairs]


def _raw_param(param: _Param) -> tuple[bytes, str | None]:
    """A parameter's bytes and declared charset (RFC 2231), before any reading of them."""
    charset, text = (param[0], param[2]) if isinstance(param, tuple) else (None, param)
    # Only ASCII, Latin-1 (RFC 2231 %XX) and escaped raw bytes are here.
    return unquote(text).encode("latin-1", "surrogateescape"), charset


def _forbidden(raw: bytes, charset: str | None = None) -> str | None:
    """The forbidden extension of a file name, however a client decodes its bytes."""
    for name in _readings(raw, charset):
        found = extension(name)
        if found in FORBIDDEN_EXTENSIONS:
            return found
    return None


def _readings(raw: bytes, charset: str | None) -> list[str]:
    """The names a client may make of a name's bytes: its charset, UTF-8 or Windows-1252,
    then RFC 2047 encoded words decoded."""
    names = [raw.decode("ascii")] if raw.isascii() else []
    if charset:
        with contextlib.suppress(LookupError, UnicodeError):  # unknown or binary codec
            names.append(raw.decode(charset, "replace"))
    if not raw.isascii():
        names += [raw.decode("utf-8", "replace"), raw.decode("cp1252", "replace")]
    names += [_encoded_words(name) for name in names if "=?" in name]
    return list(dict.fromkeys(names))


def _encoded_words(text: str) -> str:
    """The text with its RFC 2047 encoded words decoded, the space between them dropped."""
    try:
        chunks: Iterable[tuple[bytes | str, str | None]] = decode_header(text)
    except HeaderParseError:  # broken base64
        return text
    decoded: list[str] = []
    for chunk, charset in chunks:
        if isinstance(chunk, str):
            decoded.append(chunk)
            continue
        try:  # "utf-8*en" carries an RFC 2231 language
            decoded.append(chunk.decode((charset or "raw-unicode-escape").split("*")[0], "replace"))
        except (LookupError, UnicodeError):
            decoded.append(chunk.decode("latin-1"))
    return "".join(decoded)
