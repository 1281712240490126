"""Finding the links clicks are tracked on: every ``<a>``/``<area>`` href a reader can
follow to an http(s) page, in document order, with the exact span of the raw value (what
delivery replaces); nothing in comments or scripts, no other schemes, no unsubscribe link,
nothing a header or a redirect could be split with."""

from __future__ import annotations

import pytest

from postwire_common.tracking.html import MAX_URL, Link, find_links, trackable


def spans(text: str) -> list[tuple[str, str]]:
    """(raw value at the link's span, decoded URL) of each link found."""
    return [(text[link.start : link.end], link.url) for link in find_links(text)]


@pytest.mark.parametrize(
    ("html", "raw"),
    [
        ('<a href="https://a.example/x">x</a>', "https://a.example/x"),
        ("<a href='https://a.example/x'>x</a>", "https://a.example/x"),
        ("<a href=https://a.example/x>x</a>", "https://a.example/x"),
        ("<a href = \"https://a.example/x\" class='c'>x</a>", "https://a.example/x"),
        ('<a\r\n  class="btn"\n  href="https://a.example/x"\n>x</a>', "https://a.example/x"),
        ('<A HREF="https://a.example/x">x</A>', "https://a.example/x"),
        ('<a hReF="HTTPS://A.EXAMPLE/x">x</a>', "HTTPS://A.EXAMPLE/x"),
        ('<a href="https://a.example/x"/>', "https://a.example/x"),
        ('<area shape="rect" coords="0,0,1,1" href="https://a.example/x">', "https://a.example/x"),
        ('<AREA HREF="https://a.example/x" />', "https://a.example/x"),
        ('<a href="http://a.example:8080/x">x</a>', "http://a.example:8080/x"),
    ],
)
def test_quoting_styles_and_case_find_the_raw_value(html: str, raw: str) -> None:
    [link] = find_links(html)
    assert html[link.start : link.end] == raw
    assert link.url == raw


def test_entities_are_decoded_in_the_url_but_the_span_is_the_raw_value() -> None:
    html = '<p><a href="https://a.example/?a=1&amp;b=2&#38;c=&quot;3&quot;">x</a></p>'
    assert spans(html) == [
        ("https://a.example/?a=1&amp;b=2&#38;c=&quot;3&quot;", 'https://a.example/?a=1&b=2&c="3"')
    ]


def test_an_unquoted_value_may_hold_equals_signs() -> None:
    html = "<a href=https://a.example/?a=1&amp;b=2>x</a>"
    assert spans(html) == [("https://a.example/?a=1&amp;b=2", "https://a.example/?a=1&b=2")]


def test_an_href_inside_another_attributes_value_is_not_the_link() -> None:
    html = (
        '<a title="see href=\'https://other.example/\'" data-href="https://data.example/" '
        'href="https://real.example/">x</a>'
    )
    assert spans(html) == [("https://real.example/", "https://real.example/")]


def test_the_first_href_of_a_tag_is_its_link() -> None:
    html = '<a href="https://first.example/" href="https://second.example/">x</a>'
    assert spans(html) == [("https://first.example/", "https://first.example/")]


def test_links_come_in_document_order_with_exact_positions_across_lines() -> None:
    html = (
        "<html>\r\n<body>\n"
        "<p>é 中文 <a href='https://one.example/'>1</a></p>\n"
        '<a href="mailto:x@example.com">m</a><a href="https://two.example/a">2</a>\r\n'
        "<table><tr><td><A\nHREF=https://three.example/>3</A></td></tr></table>\n"
        "<map><area href='https://four.example/'></map>"
        "</body></html>"
    )
    links = find_links(html)
    assert [html[link.start : link.end] for link in links] == [
        "https://one.example/",
        "https://two.example/a",
        "https://three.example/",
        "https://four.example/",
    ]
    assert [link.url for link in links] == [html[link.start : link.end] for link in links]
    assert all(isinstance(link, Link) for link in links)


def test_replacing_each_span_rewrites_only_the_href_values() -> None:
    html = '<a class="x" href="https://a.example/">a</a> and <a href=https://b.example/>b</a>'
    out, at = [], 0
    for link in find_links(html):
        out += [html[at : link.start], "NEW"]
        at = link.end
    out.append(html[at:])
    assert "".join(out) == '<a class="x" href="NEW">a</a> and <a href=NEW>b</a>'


def test_comments_scripts_and_styles_hold_no_links() -> None:
    html = (
        '<!-- <a href="https://comment.example/">c</a> -->'
        "<script>document.write('<a href=\"https://script.example/\">s</a>');</script>"
        '<style>/* <a href="https://style.example/"> */</style>'
        '<a href="https://real.example/">r</a>'
        '<!--[if mso]><a href="https://mso.example/">o</a><![endif]-->'
    )
    assert [url for _, url in spans(html)] == ["https://real.example/"]


def test_other_tags_and_anchors_without_href_are_not_links() -> None:
    html = (
        '<link href="https://css.example/a.css" rel="stylesheet">'
        '<img src="https://img.example/a.png">'
        '<base href="https://base.example/">'
        '<a name="top">top</a><a href>empty</a><a href="">empty</a><a href="  ">blank</a>'
        '<div href="https://div.example/">d</div>'
    )
    assert find_links(html) == []


@pytest.mark.parametrize(
    "href",
    [
        "mailto:someone@example.com",
        "MAILTO:someone@example.com",
        "tel:+79001234567",
        "javascript:alert(1)",
        "java&#115;cript:alert(1)",
        "data:text/html;base64,PGI+aGk8L2I+",
        "ftp://files.example/a",
        "/relative/path",
        "relative.html",
        "#top",
        "?a=1",
        "//protocol-relative.example/x",
        "http://",
        "https:///nohost",
        "https://[::1",
        "[Unsubscribe]",
        "[unsubscribe]",
        "https://list.example/?u=[Unsubscribe]",
        "https://a.example/with space",
        "https://a.example/&#13;&#10;Set-Cookie: x=1",
        "https://a.example/&#10;x",
        "https://a.example/\tx",
        "https://a.example/\x7fx",
        "https://a.example/&#9;x",
    ],
)
def test_links_we_do_not_track(href: str) -> None:
    html = f'<a href="{href}">x</a><a href="https://kept.example/">k</a>'
    assert [url for _, url in spans(html)] == ["https://kept.example/"]


def test_raw_cr_lf_or_spaces_inside_a_quoted_href_are_refused() -> None:
    html = (
        '<a href="https://a.example/x\r\nLocation: https://evil.example/">1</a>'
        '<a href="https://a.example/x\ny">2</a>'
        '<a href="https://a.example/a b">3</a>'
    )
    assert find_links(html) == []


def test_surrounding_spaces_are_trimmed_from_the_url_not_the_span() -> None:
    html = '<a href="  https://a.example/x  ">x</a>'
    assert spans(html) == [("  https://a.example/x  ", "https://a.example/x")]


def test_very_long_urls_are_not_tracked() -> None:
    long_url = "https://a.example/" + "x" * (MAX_URL - len("https://a.example/"))
    assert len(long_url) == MAX_URL
    assert [url for _, url in spans(f'<a href="{long_url}">x</a>')] == [long_url]
    assert find_links(f'<a href="{long_url}x">x</a>') == []


def test_trackable_is_http_or_https_with_a_host() -> None:
    assert trackable("https://a.example/")
    assert trackable("http://a.example")
    assert not trackable("https://")
    assert not trackable("mailto:a@example.com")
    assert not trackable("https://a.example/[UNSUBSCRIBE]")


def test_unclosed_and_broken_markup_does_not_break_numbering() -> None:
    html = (
        '<p><a href="https://one.example/">one<p><b><a href="https://two.example/">two'
        "</i></div><a href='https://three.example/'"  # never closed: not a tag
    )
    assert [url for _, url in spans(html)] == ["https://one.example/", "https://two.example/"]
