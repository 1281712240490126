"""The pure parts of the domain check: each record's verdict, and the domain's state."""

from __future__ import annotations

import pytest

from postwire_ingest.dns_check import (
    Expected,
    RecordCheck,
    domain_state,
    judge_dkim,
    judge_dmarc,
    judge_mx,
    judge_spf,
    judge_tracking,
    statuses,
)
from postwire_ingest.spf import SpfResult

KEY = "MIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEAq1b2c3d4"


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


def test_judge_dkim_ed25519_wants_k_ed25519() -> None:
    raw = "11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHURo="  # RFC 8463 appendix A.2
    ours = f"v=DKIM1; k=ed25519; p={raw}"
    assert judge_dkim([ours], raw, "ed25519") == RecordCheck("ok", (ours,))
    # k= defaults to rsa: a record without it is not an Ed25519 key record.
    assert judge_dkim([f"v=DKIM1; p={raw}"], raw, "ed25519") == RecordCheck(
        "wrong", (f"v=DKIM1; p={raw}",), "not a DKIM Ed25519 key record"
    )
    assert judge_dkim([f"v=DKIM1; k=rsa; p={raw}"], raw, "ed25519").status == "wrong"
    other = "v=DKIM1; k=ed25519; p=AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA="
    assert judge_dkim([other], raw, "ed25519").detail == "another key"


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
