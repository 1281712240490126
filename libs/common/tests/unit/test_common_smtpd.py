"""The SMTP session's own paths agree with aiosmtpd's where they replace them."""

from __future__ import annotations

import asyncio
from collections import Counter

import pytest
from aiosmtpd.smtp import SMTP

from postwire_common.smtpd import CappedSMTP

ARGS = [
    "<ann@example.org>",
    "<ann@example.org> SIZE=100 BODY=8BITMIME",
    " <a.b+c@x-y.example>",
    '<"q q"@x.org>',
    "ann@x.org",
    "<>",
    "<a@b> ",
    "<a@[1.2.3.4]>",
    "<@relay.example:ann@example.org>",
    "<ann@example.org",
    "<ann(comment)@example.org>",
]


@pytest.mark.parametrize("arg", ARGS)
def test_envelope_paths_parse_as_aiosmtpd_parses_them(arg: str) -> None:
    loop = asyncio.new_event_loop()
    try:
        theirs = SMTP(None, loop=loop)
        ours = CappedSMTP(None, Counter(), 5, loop=loop)
        assert ours._getaddr(arg) == theirs._getaddr(arg)
    finally:
        loop.close()
