"""MTA-STS policies as pure functions: the TXT record, the policy body, MX patterns, and
what a policy does to a route (RFC 8461 3.1, 3.2, 4.1, 5)."""

from __future__ import annotations

import pytest

from postwire_common.schemas import DeliveryStatus, TlsMode
from postwire_delivery.mta_sts import (
    MAX_AGE_LIMIT,
    Mode,
    Policy,
    PolicyError,
    apply,
    mx_matches,
    parse_policy,
    parse_txt,
)
from postwire_delivery.results import Outcome
from postwire_delivery.routing import NoRoute, Route, Target

# -- TXT record ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("records", "policy_id"),
    [
        (["v=STSv1; id=20160831085700Z;"], "20160831085700Z"),
        (["v=STSv1;id=abc"], "abc"),
        (["v=STSv1 ; id=abc ; ext=whatever;"], "abc"),
        (["v=spf1 -all", "v=STSv1; id=1"], "1"),  # other records are discarded
        (["v=STSv1; id=first; id=second"], "first"),
        (["v=STSv1; id=" + "a" * 32], "a" * 32),
    ],
)
def test_txt_record_ids(records: list[str], policy_id: str) -> None:
    assert parse_txt(records) == policy_id


@pytest.mark.parametrize(
    "records",
    [
        [],
        ["v=spf1 -all"],
        ["v=STSv1; id=1", "v=STSv1; id=2"],  # not exactly one: no policy
        ["v=STSv1;"],  # no id
        ["v=STSv1; id="],
        ["v=STSv1; id=" + "a" * 33],
        ["v=STSv1; id=not-alnum"],
        ["v=STSv1; id=1; garbage"],
        ["V=STSv1; id=1"],  # the version is case-sensitive
        ["v=STSv2; id=1"],
        [" v=STSv1; id=1"],
    ],
)
def test_txt_records_that_give_no_policy(records: list[str]) -> None:
    with pytest.raises(PolicyError):
        parse_txt(records)


# -- policy body --------------------------------------------------------------------------

GOOD = "version: STSv1\r\nmode: enforce\r\nmx: mail.example.com\r\nmx: *.example.net\r\n"


def test_a_policy_with_crlf_lines() -> None:
    assert parse_policy(GOOD + "max_age: 604800\r\n") == Policy(
        Mode.ENFORCE, ("mail.example.com", "*.example.net"), 604800
    )


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        # LF only, no final line break, spaces around values, unknown keys ignored
        (
            "version:STSv1\nmode:  testing\nmx: MX.Example.ORG.\nmax_age:86400\nfoo: bar",
            Policy(Mode.TESTING, ("mx.example.org",), 86400),
        ),
        # none needs no mx
        ("version: STSv1\nmode: none\nmax_age: 0\n", Policy(Mode.NONE, (), 0)),
        # a repeated key other than mx: the first counts
        (
            "version: STSv1\nmode: enforce\nmode: none\nmx: a.test\nmax_age: 5\nmax_age: 9\n",
            Policy(Mode.ENFORCE, ("a.test",), 5),
        ),
        # longer than RFC 8461 allows: the limit
        (
            "version: STSv1\nmode: enforce\nmx: a.test\nmax_age: 9999999999\n",
            Policy(Mode.ENFORCE, ("a.test",), MAX_AGE_LIMIT),
        ),
        # blank lines are tolerated
        (
            "\r\nversion: STSv1\r\n\r\nmode: enforce\r\nmx: a.test\r\nmax_age: 1\r\n\r\n",
            Policy(Mode.ENFORCE, ("a.test",), 1),
        ),
    ],
)
def test_policies_that_parse(text: str, expected: Policy) -> None:
    assert parse_policy(text) == expected


@pytest.mark.parametrize(
    ("text", "why"),
    [
        ("mode: enforce\nmx: a.test\nmax_age: 1\n", "version"),
        ("version: STSv2\nmode: enforce\nmx: a.test\nmax_age: 1\n", "version"),
        ("version: STSv1\nmode: strict\nmx: a.test\nmax_age: 1\n", "mode"),
        ("version: STSv1\nmx: a.test\nmax_age: 1\n", "mode"),
        ("version: STSv1\nmode: enforce\nmx: a.test\n", "max_age"),
        ("version: STSv1\nmode: enforce\nmx: a.test\nmax_age: -1\n", "max_age"),
        ("version: STSv1\nmode: enforce\nmx: a.test\nmax_age: 1d\n", "max_age"),
        ("version: STSv1\nmode: enforce\nmx: a.test\nmax_age: 12345678901\n", "max_age"),
        ("version: STSv1\nmode: enforce\nmax_age: 1\n", "no mx"),
        ("version: STSv1\nmode: testing\nmax_age: 1\n", "no mx"),
        ("version: STSv1\nmode: enforce\nmx: a.*.test\nmax_age: 1\n", "mx"),
        ("version: STSv1\nmode: enforce\nmx: *\nmax_age: 1\n", "mx"),
        ("version: STSv1\nmode: enforce\nmx: a..test\nmax_age: 1\n", "mx"),
        ("version: STSv1\nmode: enforce\nmx: -a.test\nmax_age: 1\n", "mx"),
        ("version: STSv1\nmode: enforce\nmx:\nmax_age: 1\n", "mx"),
        ("version: STSv1\nmode: enforce\nmx: a.test\nmax_age: 1\n<html>\n", "line"),
        ("<html><body>Not found</body></html>", "line"),
        ("", "version"),
    ],
)
def test_policies_that_do_not_parse(text: str, why: str) -> None:
    with pytest.raises(PolicyError, match=why):
        parse_policy(text)


# -- MX patterns --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("pattern", "host", "matches"),
    [
        ("mail.example.com", "mail.example.com", True),
        ("mail.example.com", "MAIL.Example.COM.", True),
        ("mail.example.com.", "mail.example.com", True),
        ("mail.example.com", "mail2.example.com", False),
        ("mail.example.com", "example.com", False),
        ("*.example.com", "mail.example.com", True),
        ("*.example.com", "MX1.EXAMPLE.COM", True),
        ("*.example.com", "example.com", False),  # the wildcard is one whole label
        ("*.example.com", "foo.bar.example.com", False),  # ... and only one
        ("*.example.com", ".example.com", False),
        ("*.example.com", "mailexample.com", False),
        ("*.example.com", "mail.example.com.evil.test", False),
    ],
)
def test_mx_patterns(pattern: str, host: str, matches: bool) -> None:
    assert mx_matches(pattern, host) is matches


# -- applying a policy --------------------------------------------------------------------

MX1 = Target("mx1.example.org", "192.0.2.1", 25)
MX2 = Target("mx2.example.org", "192.0.2.2", 25)
BACKUP = Target("backup.other.test", "192.0.2.3", 25)
ALL = [MX1, MX2, BACKUP]


def policy(mode: Mode, *mx: str) -> Policy:
    return Policy(mode, mx, 86400)


@pytest.mark.parametrize("tls", list(TlsMode))
@pytest.mark.parametrize("found", [None, policy(Mode.NONE)])
def test_no_policy_or_none_leaves_the_route_alone(found: Policy | None, tls: TlsMode) -> None:
    assert apply(found, "example.org", ALL, tls) == Route(ALL, tls)


@pytest.mark.parametrize("tls", list(TlsMode))
def test_enforce_keeps_matching_hosts_and_requires_tls_whatever_the_account_said(
    tls: TlsMode,
) -> None:
    route = apply(policy(Mode.ENFORCE, "*.example.org"), "example.org", ALL, tls)
    assert route == Route([MX1, MX2], TlsMode.REQUIRE, "MTA-STS policy of example.org (enforce)")


def test_enforce_keeps_the_mx_order() -> None:
    route = apply(
        policy(Mode.ENFORCE, "mx2.example.org", "backup.other.test"), "d", ALL, TlsMode.NONE
    )
    assert route.targets == [MX2, BACKUP]


def test_enforce_without_a_matching_host_fails_naming_the_policy_and_hosts() -> None:
    with pytest.raises(NoRoute) as caught:
        apply(
            policy(Mode.ENFORCE, "mail.example.org"),
            "example.org",
            [MX1, MX1, BACKUP],
            TlsMode.OPPORTUNISTIC,
        )
    result = caught.value.result
    assert (result.outcome, result.status) == (Outcome.HARD, DeliveryStatus.FAILED)
    assert result.message == (
        "MTA-STS policy of example.org (enforce): no MX host matches it "
        "(mx1.example.org, backup.other.test)"
    )
    assert not result.undeliverable  # failed, not invalid: the address is fine


@pytest.mark.parametrize("tls", list(TlsMode))
def test_testing_delivers_as_usual_and_warns_when_no_host_matches(
    tls: TlsMode, caplog: pytest.LogCaptureFixture
) -> None:
    matching = apply(policy(Mode.TESTING, "*.example.org"), "example.org", ALL, tls)
    assert matching == Route(ALL, tls)
    assert not [r for r in caplog.records if r.levelname == "WARNING"]

    unmatched = apply(policy(Mode.TESTING, "mail.example.org"), "example.org", ALL, tls)
    assert unmatched == Route(ALL, tls)
    [warning] = [r for r in caplog.records if r.levelname == "WARNING"]
    assert "testing" in warning.getMessage()
    assert warning.__dict__["domain"] == "example.org"
