"""Every delivered copy carries a DKIM signature that verifies, with dkimpy, against the
key the domain's records told the user to publish, read through the loopback DNS; a
domain with Ed25519 on (RFC 8463) adds an ed25519-sha256 signature once its record
verifies, and only then."""

from __future__ import annotations

import base64
from typing import Any

import asyncpg
import dkim

from postwire_testkit.api import Tenant, envelope
from postwire_testkit.dkim import dns_lookup, publish_dkim
from postwire_testkit.dns import LoopbackDns
from postwire_testkit.smtp import Received, SmtpSink
from postwire_testkit.wait import eventually


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


HELO = "postwire.test"  # POSTWIRE_HELO_NAME of the e2e platform: its A is our sending IP


async def usable_domain(
    tenant: Tenant, dns: LoopbackDns, label: str, *, ed25519: bool, publish_ed25519: bool
) -> tuple[str, dict[str, dict[str, Any]]]:
    """A domain of ``tenant`` made usable by real DNS checks, with a sender news@; its
    records as the last verify answered them."""
    api = tenant.client("ingest")
    dns.remove(HELO, "A")
    dns.a(HELO, "127.0.0.1")
    name = f"{label}.{tenant.domain}"
    made = await api.post("/v1/domains", json={"name": name, "dkim_ed25519": ed25519})
    assert made.status_code == 201, made.text
    records = {r["purpose"]: r for r in envelope(made)["Result"]["records"]}
    assert ("dkim_ed25519" in records) is ed25519
    wanted = ["spf", "dkim", "dkim_ed25519"] if publish_ed25519 else ["spf", "dkim"]
    for purpose in wanted:
        dns.txt(records[purpose]["host"], records[purpose]["value"])
    verified = await api.post(f"/v1/domains/{name}/verify")
    shown = envelope(verified)["Result"]
    assert shown["status"] == "usable", shown
    added = await api.post("/v1/senders", json={"address": f"news@{name}"})
    assert added.status_code == 201, added.text
    return name, {r["purpose"]: r for r in shown["records"]}


async def delivered_copy(tenant: Tenant, mx: SmtpSink, sender: str, label: str) -> Received:
    rcpt = f"{label}.{tenant.name}@example.org"
    answer = await tenant.send([rcpt], **{"from": sender}, subject="Ed25519", text="hello " * 50)
    assert answer.status_code == 202, answer.text
    [sent] = envelope(answer)["Result"]["messages"]

    def mine() -> list[Received]:
        return [r for r in mx.for_rcpt(rcpt) if r.message["Message-ID"] == sent["msg_id"]]

    [received] = await eventually(mine, what=f"mail to {rcpt}")
    return received


def signatures(received: Received, lookup: object) -> list[tuple[bytes, bytes, bool]]:
    """(a=, s=, verifies) of each DKIM-Signature, outermost first."""
    found = []
    verifier = dkim.DKIM(received.data)
    for idx, _ in enumerate(received.message.get_all("DKIM-Signature") or []):
        ok = verifier.verify(idx=idx, dnsfunc=lookup)
        tags = verifier.signature_fields
        found.append((bytes(tags[b"a"]), bytes(tags[b"s"]), bool(ok)))
    return found


def verifies(data: bytes, idx: int, lookup: object) -> bool:
    """Whether the ``idx``-th DKIM-Signature of ``data`` verifies (dkimpy's ``DKIM.verify``
    raises for a body hash mismatch where ``dkim.verify`` answers False)."""
    try:
        return bool(dkim.DKIM(data).verify(idx=idx, dnsfunc=lookup))
    except dkim.DKIMException:
        return False


def selector(record: dict[str, Any]) -> bytes:
    return str(record["host"]).split(".")[0].encode()


async def test_a_domain_with_ed25519_on_signs_with_both_keys_and_both_verify(
    tenant: Tenant, mx: SmtpSink, dns: LoopbackDns
) -> None:
    name, records = await usable_domain(tenant, dns, "ed", ed25519=True, publish_ed25519=True)
    assert records["dkim_ed25519"]["status"] == "ok"
    assert records["dkim_ed25519"]["value"].startswith("v=DKIM1; k=ed25519; p=")
    received = await delivered_copy(tenant, mx, f"news@{name}", "ed-both")
    lookup = dns_lookup(dns)
    assert signatures(received, lookup) == [
        (b"rsa-sha256", selector(records["dkim"]), True),
        (b"ed25519-sha256", selector(records["dkim_ed25519"]), True),
    ]
    # Each signature is checked, not vacuous: a changed copy fails both.
    tampered = received.data.replace(b"hello", b"HELLO", 1)
    assert not verifies(tampered, 0, lookup)
    assert not verifies(tampered, 1, lookup)


async def test_the_ed25519_key_does_not_sign_until_its_record_verifies(
    tenant: Tenant, other_tenant: Tenant, mx: SmtpSink, dns: LoopbackDns
) -> None:
    name, records = await usable_domain(tenant, dns, "ed-later", ed25519=False,
                                        publish_ed25519=False)  # fmt: skip
    api = tenant.client("ingest")
    foreign = await other_tenant.client("ingest").patch(
        f"/v1/domains/{name}", json={"dkim_ed25519": True}
    )
    assert foreign.status_code == 404  # another account's domain is not there for it
    turned = await api.patch(f"/v1/domains/{name}", json={"dkim_ed25519": True})
    assert turned.status_code == 200, turned.text
    shown = envelope(turned)["Result"]
    assert shown["dkim_ed25519"] is True
    ed_record = {r["purpose"]: r for r in shown["records"]}["dkim_ed25519"]
    assert ed_record["status"] == "pending"
    verified = envelope(await api.post(f"/v1/domains/{name}/verify"))["Result"]
    assert verified["status"] == "usable"  # the missing Ed25519 record does not demote it
    assert {r["purpose"]: r for r in verified["records"]}["dkim_ed25519"]["status"] == "missing"

    lookup = dns_lookup(dns)
    received = await delivered_copy(tenant, mx, f"news@{name}", "ed-rsa-only")
    assert signatures(received, lookup) == [(b"rsa-sha256", selector(records["dkim"]), True)]

    # Published and verified: the next copies carry both signatures.
    dns.txt(ed_record["host"], ed_record["value"])
    await api.post(f"/v1/domains/{name}/verify")

    async def signed_with_both() -> bool:
        copy = await delivered_copy(tenant, mx, f"news@{name}", "ed-now")
        return [a for a, _, ok in signatures(copy, lookup) if ok] == [
            b"rsa-sha256",
            b"ed25519-sha256",
        ]

    await eventually(signed_with_both, what="mail signed with the Ed25519 key too")
