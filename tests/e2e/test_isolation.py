"""A slow destination delays only itself: an MX that stalls, a webhook that hangs.

Delivery and pushes work in lanes per destination (``postwire_common.lanes``); a lane
that is full is left out of claims, so the work for everything else goes on.
"""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest

from postwire_testkit.api import Tenant, envelope
from postwire_testkit.dns import LoopbackDns
from postwire_testkit.http import HttpReceiver
from postwire_testkit.smtp import SmtpSink
from postwire_testkit.wait import eventually

STALLED = "stalled.example"


@pytest.fixture(scope="module")
def stalled_mx(dns: LoopbackDns, mx: SmtpSink) -> Iterator[SmtpSink]:
    """An MX on another loopback address (same port) that takes 30 s to answer DATA."""
    sink = SmtpSink(host="127.0.0.2", port=mx.port).start()
    sink.delay = 30.0
    dns.mail_domain(STALLED, ip="127.0.0.2")
    yield sink
    sink.delay = 0.0
    sink.stop()


async def test_a_stalled_mx_does_not_delay_mail_to_another(
    tenant: Tenant, mx: SmtpSink, stalled_mx: SmtpSink
) -> None:
    # More than a lane holds (connections x depth) and more than delivery's whole window,
    # so the stalled domain's mail also waits in the table, not in memory.
    for n in range(3):
        stuck = [f"s{n}-{i}.{tenant.name}@{STALLED}" for i in range(100)]
        assert (await tenant.send(stuck)).status_code == 202
    started = time.monotonic()
    answer = await tenant.send([f"fine{i}.{tenant.name}@example.org" for i in range(5)])
    for message in envelope(answer)["Result"]["messages"]:
        assert await tenant.wait_for_status(message["env_id"], "delivered", within=8)
    assert time.monotonic() - started < 8
    assert stalled_mx.received == []  # nothing reached the stalled MX's 250 yet


async def test_a_hanging_webhook_does_not_delay_another(
    tenant: Tenant, receiver: HttpReceiver
) -> None:
    hanging, healthy = f"/hang-{tenant.name}", f"/healthy-{tenant.name}"
    await tenant.add_webhook(receiver.url(hanging), ["delivered"])
    await tenant.add_webhook(receiver.url(healthy), ["delivered"])
    receiver.hang(hanging, 10.0)  # longer than the push timeout (2 s here)
    try:
        rcpts = [f"h{i}.{tenant.name}@example.org" for i in range(40)]
        answer = await tenant.send(rcpts)
        env_ids = {m["env_id"] for m in envelope(answer)["Result"]["messages"]}
        started = time.monotonic()

        def pushed() -> bool:
            got = {p.json().get("env_id") for p in receiver.posts(healthy)}
            return env_ids <= got

        # The hanging endpoint has 40 pushes of 2 s each ahead of it (20 s at 4 at once);
        # the healthy one gets all of its pushes long before that.
        await eventually(pushed, within=8, what="every push to the healthy webhook")
        assert time.monotonic() - started < 8
    finally:
        receiver.hang(hanging, 0)
