"""The pure parts of the SPF evaluator: which TXT values are SPF records, their syntax, and
macros."""

from __future__ import annotations

import ipaddress

import pytest

from postwire_ingest.spf import PermError, Term, expand, parse_spf, spf_records


def test_spf_records_are_the_txt_values_with_the_version_tag() -> None:
    txt = ["v=spf1 -all", "V=SPF1", "v=spf10 -all", "google-site-verification=x", "v=spf1"]
    assert spf_records(txt) == ["v=spf1 -all", "V=SPF1", "v=spf1"]


def test_parse_spf_terms() -> None:
    record = (
        "v=spf1 ip4:192.0.2.1/24 -ip6:2001:DB8::1 ~a a:mail.example/24//64 ?mx//64 "
        "mx:mx.example include:_spf.example exists:%{i}.x.example ptr +all "
        "redirect=_spf.example unknown=kept"
    )
    assert parse_spf(record) == [
        Term("+", "ip4", "192.0.2.0/24"),
        Term("-", "ip6", "2001:db8::1/128"),
        Term("~", "a", ""),
        Term("+", "a", "mail.example", 24, 64),
        Term("?", "mx", "", 32, 64),
        Term("+", "mx", "mx.example"),
        Term("+", "include", "_spf.example"),
        Term("+", "exists", "%{i}.x.example"),
        Term("+", "ptr", ""),
        Term("+", "all", ""),
        Term("", "redirect", "_spf.example"),
        Term("", "unknown", "kept"),
    ]


@pytest.mark.parametrize(
    "record",
    [
        "v=spf1 ip4:192.0.2.300",
        "v=spf1 ip4:2001:db8::1",
        "v=spf1 ip6:192.0.2.1",
        "v=spf1 ip4",
        "v=spf1 a:",
        "v=spf1 a/33",
        "v=spf1 mx//129",
        "v=spf1 include",
        "v=spf1 include:x.example/24",
        "v=spf1 exists",
        "v=spf1 all:x.example",
        "v=spf1 all/24",
        "v=spf1 frobnicate:x.example",
        "v=spf1 redirect=a.example redirect=b.example",
        "v=spf1 *all",
    ],
)
def test_parse_spf_refuses_what_a_receiver_calls_permerror(record: str) -> None:
    with pytest.raises(PermError):
        parse_spf(record)


@pytest.mark.parametrize(
    ("spec", "ip", "expanded"),
    [
        ("%{i}._spf.%{d}", "192.0.2.3", "192.0.2.3._spf.example.com"),
        ("%{ir}.%{v}._spf.%{d2}", "192.0.2.3", "3.2.0.192.in-addr._spf.example.com"),
        ("%{l}.%{o}", "192.0.2.3", "postmaster.sender.example"),
        ("%{d1r}.x.example", "192.0.2.3", "example.x.example"),
        (
            "%{ir}.ip6.example",
            "2001:db8::1",
            "1.0.0.0." + "0." * 20 + "8.b.d.0.1.0.0.2.ip6.example",
        ),
        ("a%%b.example", "192.0.2.3", "a%b.example"),
    ],
)
def test_expand_macros(spec: str, ip: str, expanded: str) -> None:
    assert expand(spec, ipaddress.ip_address(ip), "sender.example", "example.com") == expanded


@pytest.mark.parametrize(
    "spec", ["%{d0}.example", "%{c}.example", "%x.example", "localhost", "x.123"]
)
def test_expand_refuses_bad_macros_and_names(spec: str) -> None:
    with pytest.raises(PermError):
        expand(spec, ipaddress.ip_address("192.0.2.3"), "a.example", "a.example")
