"""Finding the links of an HTML body that clicks are tracked on.

Delivery rewrites them and the events service looks them up by number, both with
:func:`find_links` over the same stored HTML, so their numbering always agrees. The
stdlib's HTML parser finds the tags (comments, scripts, CDATA and attribute quoting are
its business); we only locate each ``href`` value inside the tag's own text.
"""

from __future__ import annotations

import html
import re
from dataclasses import dataclass
from html.parser import HTMLParser
from urllib.parse import urlsplit

UNSUBSCRIBE_TAG = "[Unsubscribe]"  # Devino's tag, replaced by the unsubscribe URL
# A start tag's name, then its attributes one after the other, as the stdlib's parser
# reads them (``tagfind_tolerant`` and ``attrfind_tolerant``): scanning attribute by
# attribute keeps an ``href=`` inside another attribute's quoted value from being taken
# for the link, and lets an unquoted value hold ``=`` (``href=https://x/?a=1``).
_TAG_NAME = re.compile(r"<[a-zA-Z][^\t\n\r\f />\x00]*(?:\s|/(?!>))*")
_ATTRIBUTE = re.compile(
    r"""((?<=['"\s/])[^\s/>][^\s/=>]*)(\s*=+\s*('[^']*'|"[^"]*"|(?!['"])[^>\s]*))?(?:\s|/(?!>))*"""
)
_CONTROL = re.compile(r"[\x00-\x20\x7f]")  # a URL with these is not one we redirect to
MAX_URL = 4096


@dataclass(frozen=True, slots=True)
class Link:
    start: int  # the raw attribute value's span in the HTML
    end: int
    url: str  # the value, HTML entities decoded


class _Anchors(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.found: list[tuple[int, int, str]] = []  # (line, column, tag text)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in ("a", "area"):
            text = self.get_starttag_text()
            if text:
                line, column = self.getpos()
                self.found.append((line, column, text))

    handle_startendtag = handle_starttag


def trackable(url: str) -> bool:
    """An ``http(s)`` URL we may send a reader to: not ``mailto:`` or other schemes, not
    the unsubscribe link, nothing a header or a redirect could be split with."""
    if len(url) > MAX_URL or UNSUBSCRIBE_TAG.lower() in url.lower() or _CONTROL.search(url):
        return False
    try:
        parts = urlsplit(url)
    except ValueError:
        return False
    return parts.scheme.lower() in ("http", "https") and bool(parts.hostname)


def find_links(text: str) -> list[Link]:
    """The tracked links of ``text``, in document order."""
    parser = _Anchors()
    parser.feed(text)
    parser.close()
    starts = [0]  # offset of each line (the parser counts lines by "\n")
    starts.extend(m.end() for m in re.finditer("\n", text))
    links = []
    for line, column, tag in parser.found:
        offset = starts[line - 1] + column
        if text[offset : offset + len(tag)] != tag:
            continue  # not where the parser says (never seen; skip rather than corrupt)
        span = _href(tag)
        if span is None:
            continue
        start, end = span
        url = html.unescape(tag[start:end]).strip()
        if trackable(url):
            links.append(Link(offset + start, offset + end, url))
    return links


def _href(tag: str) -> tuple[int, int] | None:
    """The span of the first ``href`` value in the start tag ``tag``, quotes excluded."""
    name = _TAG_NAME.match(tag)
    if name is None:
        return None
    at = name.end()
    while at < len(tag):
        found = _ATTRIBUTE.match(tag, at)
        if found is None:
            return None
        if found.group(1).lower() == "href":  # the first one is the link, as in browsers
            if found.group(3) is None:
                return None
            start, end = found.span(3)
            if found.group(3)[:1] in ("'", '"'):
                start, end = start + 1, end - 1
            return start, end
        at = found.end()
    return None
