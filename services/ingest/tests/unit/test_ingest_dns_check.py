"""The pure parts of the domain check: SPF syntax and macros, and each record's verdict."""

from __future__ import annotations

import ipaddress

import pytest

from postwire_ingest.dns_check import (
    Expected,
    PermError,
    RecordCheck,
    SpfResult,
    Term,
    domain_state,
    expand,
    judge_dkim,
    judge_dmarc,
    judge_mx,
    judge_spf,
    judge_tracking,
    parse_spf,
    spf_records,
    statuses,
)

KEY = "MIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEAq1b2c3d4"


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


def test_judge_spf_needs_a_pass_for_every_sending_ip() -> None:
    record = "v=spf1 ip4:192.0.2.1 ~all"
    both = {"192.0.2.1": SpfResult("pass"), "2001:db8::1": SpfResult("pass")}
    assert judge_spf(record, both) == RecordCheck("ok", (record,))
    one = {"192.0.2.1": SpfResult("pass"), "2001:db8::1": SpfResult("softfail")}
    assert judge_spf(record, one) == RecordCheck("wrong", (record,), "2001:db8::1 gets softfail")


def test_judge_spf_permerror_is_wrong_and_temperror_decides_nothing() -> None:
    record = "v=spf1 include:a.example -all"
    perm = {"192.0.2.1": SpfResult("permerror", "too many DNS lookups (more than 10)")}
    assert judge_spf(record, perm) == RecordCheck(
        "wrong", (record,), "permerror: too many DNS lookups (more than 10)"
    )
    temp = {"192.0.2.1": SpfResult("pass"), "192.0.2.2": SpfResult("temperror", "TXT x: timed out")}
    assert judge_spf(record, temp) == RecordCheck("pending", (record,), "TXT x: timed out")
    # A definite failure for one address is wrong whatever another's lookup did.
    mixed = {"192.0.2.1": SpfResult("fail"), "192.0.2.2": SpfResult("temperror", "x")}
    assert judge_spf(record, mixed).status == "wrong"


def test_judge_dkim() -> None:
    ours = f"v=DKIM1; k=rsa; p={KEY}"
    assert judge_dkim([ours], KEY) == RecordCheck("ok", (ours,))
    spaced = f"v=DKIM1;k=rsa;  p={KEY[:10]} {KEY[10:]} ;"
    assert judge_dkim([spaced], KEY).status == "ok"
    assert judge_dkim([f"p={KEY}"], KEY).status == "ok"  # v= and k= have defaults
    assert judge_dkim([], KEY) == RecordCheck("missing")
    other = "v=DKIM1; k=rsa; p=MIIBother"
    assert judge_dkim([other], KEY) == RecordCheck("wrong", (other,), "another key")
    assert judge_dkim(["v=DKIM1; p="], KEY).detail == "revoked (empty p=)"
    assert judge_dkim([f"v=DKIM1; k=ed25519; p={KEY}"], KEY).status == "wrong"
    assert judge_dkim([f"v=DKIM2; p={KEY}"], KEY).status == "wrong"
    assert judge_dkim([f"p={KEY}; p={KEY}"], KEY).status == "wrong"
    assert judge_dkim(["hello"], KEY).status == "wrong"
    assert judge_dkim([ours, ours], KEY).detail == "several TXT records at the selector"


def test_judge_dmarc() -> None:
    assert judge_dmarc(["v=DMARC1; p=none"]) == RecordCheck("ok", ("v=DMARC1; p=none",))
    assert judge_dmarc(["v = DMARC1"]).status == "ok"
    assert judge_dmarc(["v=DMARC1; p=none", "other"]).status == "ok"
    assert judge_dmarc([]) == RecordCheck("missing")
    assert judge_dmarc(["p=none"]) == RecordCheck(
        "wrong", ("p=none",), "no record starts with v=DMARC1"
    )
    assert judge_dmarc(["v=dmarc1; p=none"]).status == "wrong"  # the version is case-exact
    assert judge_dmarc(["v=DMARC1; p=none", "v=DMARC1; p=reject"]).detail == (
        "several DMARC records"
    )


def test_judge_mx() -> None:
    found = [(20, "backup.example."), (10, "MAIL.Postwire.test.")]
    assert judge_mx(found, "mail.postwire.test") == RecordCheck(
        "ok", ("10 MAIL.Postwire.test", "20 backup.example")
    )
    assert judge_mx([(10, "mx.elsewhere.example.")], "mail.postwire.test.") == RecordCheck(
        "wrong", ("10 mx.elsewhere.example",), "no MX host is mail.postwire.test"
    )
    assert (
        judge_mx([(0, ".")], "mail.postwire.test").detail == "null MX: the domain accepts no mail"
    )
    assert judge_mx([], "mail.postwire.test") == RecordCheck("missing")


def test_judge_tracking() -> None:
    assert judge_tracking(["Track.Postwire.test."], "track.postwire.test") == RecordCheck(
        "ok", ("Track.Postwire.test",)
    )
    assert judge_tracking(["elsewhere.example."], "track.postwire.test") == RecordCheck(
        "wrong", ("elsewhere.example",), "points elsewhere than track.postwire.test"
    )
    assert judge_tracking([], "track.postwire.test") == RecordCheck("missing")


def test_statuses_keep_the_previous_one_when_dns_failed() -> None:
    checks = {
        "spf": RecordCheck("ok", ("v=spf1 -all",)),
        "dkim": RecordCheck("pending", detail="DNS lookup failed: TXT x: timed out"),
        "mx": RecordCheck("pending", detail="DNS lookup failed"),
        "dmarc": RecordCheck("missing"),
    }
    assert statuses(checks, {"spf": "wrong", "dkim": "ok"}) == {
        "spf": "ok",
        "dkim": "ok",
        "mx": "pending",
        "dmarc": "missing",
    }


@pytest.mark.parametrize(
    ("spf", "dkim", "mx", "dmarc", "state"),
    [
        ("ok", "ok", "ok", "ok", "verified"),
        ("ok", "ok", "ok", "missing", "verified"),  # DMARC is optional
        ("ok", "ok", "ok", "wrong", "verified"),
        ("ok", "ok", "missing", "ok", "usable"),  # sends; bounces do not reach us yet
        ("ok", "ok", "wrong", "missing", "usable"),
        ("ok", "wrong", "ok", "ok", "unverified"),
        ("missing", "ok", "ok", "ok", "unverified"),
        ("pending", "pending", "pending", "pending", "unverified"),
    ],
)
def test_domain_state_needs_spf_and_dkim_to_send_and_mx_to_be_verified(
    spf: str, dkim: str, mx: str, dmarc: str, state: str
) -> None:
    record_statuses = {"spf": spf, "dkim": dkim, "mx": mx, "dmarc": dmarc, "tracking": "missing"}
    assert domain_state(record_statuses) == state


def test_expected_refuses_a_sending_address_that_is_not_an_ip() -> None:
    with pytest.raises(ValueError, match="does not appear to be an IPv4 or IPv6 address"):
        Expected(("mail.postwire.test",), "mail.postwire.test", "track.postwire.test")
