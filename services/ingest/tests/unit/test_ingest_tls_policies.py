"""TLS policies: which rule a recipient domain gets, how rule domains are written, and
that each domain's batch carries its mode."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from postwire_common.addresses import Mailbox
from postwire_common.errors import InvalidValue
from postwire_common.identity import Principal
from postwire_common.schemas import OutboundBatches, TlsMode
from postwire_ingest.compose import Content
from postwire_ingest.sending import SendCommand, Sender
from postwire_ingest.tls_policies import mode_for, normalize_rule_domain

REQUIRE, OPPORTUNISTIC, NONE = TlsMode.REQUIRE, TlsMode.OPPORTUNISTIC, TlsMode.NONE


@pytest.mark.parametrize(
    ("rules", "domain", "expected"),
    [
        ({}, "example.org", OPPORTUNISTIC),
        ({"example.org": REQUIRE}, "example.org", REQUIRE),
        ({"example.org": REQUIRE}, "example.net", OPPORTUNISTIC),
        ({"example.org": REQUIRE}, "mx.example.org", OPPORTUNISTIC),  # exact names only
        ({"*": NONE}, "example.net", NONE),
        ({"*": REQUIRE, "example.org": OPPORTUNISTIC}, "example.org", OPPORTUNISTIC),
        ({"*": REQUIRE, "example.org": NONE}, "example.net", REQUIRE),
    ],
)
def test_the_domains_own_rule_then_the_wildcard_then_opportunistic(
    rules: dict[str, TlsMode], domain: str, expected: TlsMode
) -> None:
    assert mode_for(rules, domain) is expected


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("*", "*"),
        (" * ", "*"),
        ("Example.ORG", "example.org"),
        ("example.org.", "example.org"),
        ("münchen.de", "xn--mnchen-3ya.de"),  # as recipients' domains are stored
        ("mx." + "a" * 63 + "." + "b" * 63 + ".com", "mx." + "a" * 63 + "." + "b" * 63 + ".com"),
    ],
)
def test_rule_domains_are_written_as_recipient_domains_are(given: str, expected: str) -> None:
    assert normalize_rule_domain(given) == expected


@pytest.mark.parametrize(
    "bad",
    ["", "**", "*.example.org", "localhost", "a b.org", "1.2.3.4", "x.test", "a" * 250 + ".org"],
)
def test_anything_else_is_invalid_value(bad: str) -> None:
    with pytest.raises(InvalidValue):
        normalize_rule_domain(bad)


def test_each_domains_batch_carries_its_mode() -> None:
    principal = Principal("T1", "acme", "acme.trigger", "trigger")
    recipients = [Mailbox(a) for a in ("a@example.org", "b@example.net", "c@example.com")]
    _, _, outgoing = Sender._per_recipient(
        principal,
        Mailbox("news@acme.example"),
        recipients,
        100,
        SendCommand("news@acme.example", [], Content("hi")),
        "hi",
        None,
        "R1",
        "R1",
        datetime.now(UTC),
        [],
        {},
        {"example.org": REQUIRE, "*": NONE, "example.com": OPPORTUNISTIC},
    )
    [batches] = [o.body for o in outgoing if isinstance(o.body, OutboundBatches)]
    assert {b.domain: b.tls for b in batches.batches} == {
        "example.org": REQUIRE,
        "example.net": NONE,
        "example.com": OPPORTUNISTIC,
    }
