"""SMTP PIPELINING against real servers on loopback: replies that come together are all
read, refusals keep the session in step, and servers without PIPELINING get one command
at a time. The byte-exact copy that arrives is checked too."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from postwire_delivery.pipelining import parse_reply
from postwire_delivery.results import Outcome
from postwire_delivery.routing import Target
from postwire_delivery.smtp import SmtpPool
from postwire_testkit.smtp import SmtpSink

pytestmark = pytest.mark.integration

MESSAGE = b"Subject: x\r\n\r\nhello\r\n.leading dot\r\n"


@pytest.fixture(params=[True, False], ids=["pipelining", "one-by-one"])
def sink(request: pytest.FixtureRequest) -> Iterator[SmtpSink]:
    server = SmtpSink(pipelining=request.param).start()
    server.reject("bad@example.org")
    server.reject("spam@example.org", "554 5.7.1 rejected as spam")
    server.tempfail("later@example.org", 1)
    yield server
    server.stop()


async def test_a_session_carries_deliveries_and_refusals_in_step(sink: SmtpSink) -> None:
    pool = SmtpPool("postwire.test", per_host=1)  # one connection: every send reuses it
    target = Target("mx.test", "127.0.0.1", sink.port)
    try:
        outcomes = [
            (await pool.send(target, "s@shop.example", rcpt, MESSAGE)).outcome
            for rcpt in (
                "a@example.org", "bad@example.org", "spam@example.org", "later@example.org",
                "later@example.org", "b@example.org",
            )
        ]  # fmt: skip
    finally:
        await pool.close()
    assert outcomes == [
        Outcome.DELIVERED, Outcome.HARD, Outcome.HARD, Outcome.SOFT, Outcome.DELIVERED,
        Outcome.DELIVERED,
    ]  # fmt: skip
    [first] = sink.for_rcpt("a@example.org")
    assert first.data == MESSAGE  # dot-stuffed on the wire, byte-exact at the server


@pytest.mark.parametrize(
    ("data", "code", "message", "rest"),
    [
        (b"250 OK\r\n", 250, "OK", b""),
        (b"250-first\r\n250 second\r\n354 go\r\n", 250, "first\nsecond", b"354 go\r\n"),
        (b"550 5.1.1 no\r\n503 need RCPT\r\n", 550, "5.1.1 no", b"503 need RCPT\r\n"),
    ],
)
def test_replies_are_taken_one_at_a_time(data: bytes, code: int, message: str, rest: bytes) -> None:
    buffer = bytearray(data)
    reply = parse_reply(buffer)
    assert reply is not None
    assert (reply.code, reply.message, bytes(buffer)) == (code, message, rest)


def test_an_incomplete_reply_waits_for_more() -> None:
    buffer = bytearray(b"250-first\r\n250 sec")
    assert parse_reply(buffer) is None
    assert bytes(buffer) == b"250-first\r\n250 sec"
