"""Every delivered copy carries a DKIM signature that verifies, with dkimpy, against the
key the domain's records told the user to publish, read through the loopback DNS."""

from __future__ import annotations

import base64

import asyncpg
import dkim
import dns.resolver

from postwire_testkit.api import Tenant, envelope
from postwire_testkit.dns import LoopbackDns
from postwire_testkit.smtp import Received, SmtpSink
from postwire_testkit.wait import eventually


def dns_lookup(loopback: LoopbackDns) -> object:
    """dkimpy's dnsfunc, asking the loopback DNS server over the network."""
    resolver = dns.resolver.Resolver(configure=False)
    resolver.nameservers = [loopback.nameserver.split(":")[0]]
    resolver.port = loopback.port

    def lookup(name: bytes, timeout: int = 5) -> bytes | None:
        try:
            answer = resolver.resolve(name.decode().rstrip("."), "TXT", lifetime=timeout)
        except dns.resolver.NXDOMAIN:
            return None
        return b"".join(answer[0].strings)

    return lookup


async def publish_dkim(tenant: Tenant, dns_server: LoopbackDns) -> str:
    answer = await tenant.client("ingest").get(f"/v1/domains/{tenant.domain}")
    records = envelope(answer)["Result"]["records"]
    [record] = [r for r in records if r["purpose"] == "dkim"]
    dns_server.txt(record["host"], record["value"])
    return str(record["host"])


async def test_every_delivered_copy_verifies_against_the_published_key(
    tenant: Tenant, mx: SmtpSink, dns: LoopbackDns
) -> None:
    host = await publish_dkim(tenant, dns)
    attachment = base64.b64encode(bytes(range(256)) * 40).decode()
    rcpts = [f"dkim1.{tenant.name}@example.org", f"dkim2.{tenant.name}@example.net"]
    answer = await tenant.send(
        rcpts,
        **{"from": f"Zoë's shop <{tenant.sender}>"},
        subject="Ünïcode subject — with a long tail " + "ß" * 80,
        text="a line " * 300 + "\n\ttabs and  double  spaces  \nend",
        html="<p>" + "long html " * 500 + "</p>",
        attachments=[{"filename": "data.bin", "content": attachment}],
    )
    assert answer.status_code == 202, answer.text
    lookup = dns_lookup(dns)
    for m in envelope(answer)["Result"]["messages"]:

        def mine(m: dict[str, str] = m) -> list[Received]:
            return [r for r in mx.for_rcpt(m["rcpt"]) if r.message["Message-ID"] == m["msg_id"]]

        [received] = await eventually(mine, what=f"mail to {m['rcpt']}")
        signature = received.message["DKIM-Signature"]
        assert signature is not None
        tags = dict(part.strip().split("=", 1) for part in str(signature).split(";") if "=" in part)
        assert tags["d"] == tenant.domain
        assert f"{tags['s']}._domainkey.{tenant.domain}" == host
        assert tags["c"] == "relaxed/relaxed"
        assert dkim.verify(received.data, dnsfunc=lookup), m["rcpt"]
        # A copy changed on the way fails: the check above is not vacuous.
        tampered = received.data.replace(m["rcpt"].encode(), b"someone@example.org", 1)
        assert not dkim.verify(tampered, dnsfunc=lookup)


async def test_deleting_a_domain_drops_deliverys_copy_of_its_keys(
    tenant: Tenant, mx: SmtpSink, db: asyncpg.Connection
) -> None:
    rcpt = f"gone-domain.{tenant.name}@example.org"
    answer = await tenant.send([rcpt])
    assert answer.status_code == 202, answer.text
    [message] = envelope(answer)["Result"]["messages"]
    assert await tenant.wait_for_status(message["env_id"], "delivered") == "delivered"

    async def keys() -> int:
        count: int = await db.fetchval(
            "SELECT count(*) FROM delivery.signing_keys WHERE domain = $1", tenant.domain
        )
        return count

    assert await keys() == 1  # came with the mail
    deleted = await tenant.client("ingest").delete(f"/v1/domains/{tenant.domain}")
    assert deleted.status_code == 200, deleted.text

    async def dropped() -> bool:
        return await keys() == 0

    assert await eventually(dropped, what="delivery's copy of the key dropped")
    # The domain and its senders are gone too: sending from it is refused.
    again = await tenant.send([rcpt])
    assert again.status_code != 202
