"""Sender domains verified by real DNS (the loopback DNS server): per-record status and
the value found, the domain's state, the background re-check moving it down, and DKIM
key rotation that signs with the new key only once its record verifies."""

from __future__ import annotations

from typing import Any

import dkim
import httpx

from postwire_testkit.api import Tenant, envelope
from postwire_testkit.dns import LoopbackDns
from postwire_testkit.smtp import Received, SmtpSink
from postwire_testkit.wait import eventually

HELO = "postwire.test"  # POSTWIRE_HELO_NAME of the e2e platform: its A is our sending IP


def api(tenant: Tenant) -> httpx.AsyncClient:
    return tenant.client("ingest")


async def result(answer: httpx.Response, status: int = 200) -> Any:
    assert answer.status_code == status, answer.text
    return envelope(answer)["Result"]


def records(domain: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {r["purpose"]: r for r in domain["records"]}


async def verify(tenant: Tenant, name: str) -> dict[str, Any]:
    return dict(await result(await api(tenant).post(f"/v1/domains/{name}/verify")))


def publish(dns: LoopbackDns, record: dict[str, Any]) -> None:
    if record["type"] == "TXT":
        dns.txt(record["host"], record["value"])
    elif record["type"] == "MX":
        preference, host = record["value"].split()
        dns.mx(record["host"], host, int(preference))
    else:
        dns.cname(record["host"], record["value"])


async def new_domain(tenant: Tenant, dns: LoopbackDns, label: str) -> tuple[str, dict[str, Any]]:
    dns.remove(HELO, "A")
    dns.a(HELO, "127.0.0.1")
    name = f"{label}.{tenant.domain}"
    made = await result(await api(tenant).post("/v1/domains", json={"name": name}), 201)
    assert made["status"] == "unverified"
    return name, records(made)


async def test_states_follow_the_records_found(tenant: Tenant, dns: LoopbackDns) -> None:
    name, wanted = await new_domain(tenant, dns, "states")
    shown = await verify(tenant, name)
    assert shown["status"] == "unverified"
    assert {p: (r["status"], r["found"]) for p, r in records(shown).items()} == {
        p: ("missing", []) for p in ("spf", "dkim", "dmarc", "mx", "tracking")
    }
    answer = await api(tenant).post("/v1/senders", json={"address": f"news@{name}"})
    assert envelope(answer)["Code"] == "not_available"  # not usable: no senders yet

    # Wrong values are reported with what DNS holds.
    dns.txt(name, "v=spf1 ip4:192.0.2.1 -all")
    dns.txt(wanted["dkim"]["host"], "v=DKIM1; k=rsa; p=AAAA")
    shown = records(await verify(tenant, name))
    assert (shown["spf"]["status"], shown["spf"]["found"]) == (
        "wrong",
        ["v=spf1 ip4:192.0.2.1 -all"],
    )
    assert shown["spf"]["detail"]
    assert (shown["dkim"]["status"], shown["dkim"]["found"]) == (
        "wrong",
        ["v=DKIM1; k=rsa; p=AAAA"],
    )

    dns.remove(name, "TXT")
    dns.remove(wanted["dkim"]["host"])
    publish(dns, wanted["spf"])
    publish(dns, wanted["dkim"])
    shown = await verify(tenant, name)
    assert shown["status"] == "usable"  # may send; MX still missing
    assert records(shown)["spf"]["status"] == records(shown)["dkim"]["status"] == "ok"
    await result(await api(tenant).post("/v1/senders", json={"address": f"news@{name}"}), 201)
    answer = await tenant.send([f"to.{tenant.name}@example.org"], **{"from": f"news@{name}"})
    assert answer.status_code == 202, answer.text

    publish(dns, wanted["mx"])
    shown = await verify(tenant, name)
    assert shown["status"] == "verified"  # DMARC is optional
    assert records(shown)["dmarc"]["status"] == "missing"


async def test_the_recheck_moves_a_domain_down_when_a_record_goes(
    tenant: Tenant, dns: LoopbackDns
) -> None:
    name, wanted = await new_domain(tenant, dns, "recheck")
    for purpose in ("spf", "dkim", "mx"):
        publish(dns, wanted[purpose])
    assert (await verify(tenant, name))["status"] == "verified"
    await result(await api(tenant).post("/v1/senders", json={"address": f"news@{name}"}), 201)

    dns.remove(wanted["dkim"]["host"])  # removed later: the background re-check notices

    async def moved_down() -> dict[str, Any] | None:
        shown = await result(await api(tenant).get(f"/v1/domains/{name}"))
        return shown if shown["status"] == "unverified" else None

    shown = await eventually(moved_down, what="the domain moved down by the re-check")
    assert records(shown)["dkim"]["status"] == "missing"

    async def refused() -> bool:
        answer = await tenant.send([f"x.{tenant.name}@example.org"], **{"from": f"news@{name}"})
        return answer.status_code == 400

    await eventually(refused, what="sending from it refused")


async def test_a_rotated_key_signs_only_once_its_record_verifies(
    tenant: Tenant, dns: LoopbackDns, mx: SmtpSink
) -> None:
    name, wanted = await new_domain(tenant, dns, "rotate")
    for purpose in ("spf", "dkim", "mx"):
        publish(dns, wanted[purpose])
    await verify(tenant, name)
    await result(await api(tenant).post("/v1/senders", json={"address": f"news@{name}"}), 201)
    old_selector = wanted["dkim"]["host"].split(".")[0]

    rotated = records(await result(await api(tenant).post(f"/v1/domains/{name}/dkim/rotate")))
    new_record = rotated["dkim_next"]
    new_selector = new_record["host"].split(".")[0]
    assert new_selector != old_selector
    assert rotated["dkim"]["host"] == wanted["dkim"]["host"]  # still the signing key

    async def selector_of_next_mail(label: str) -> bytes:
        rcpt = f"{label}.{tenant.name}@example.org"
        answer = await tenant.send([rcpt], **{"from": f"news@{name}"})
        [sent] = envelope(answer)["Result"]["messages"]

        def mine() -> list[Received]:
            return [r for r in mx.for_rcpt(rcpt) if r.message["Message-ID"] == sent["msg_id"]]

        [received] = await eventually(mine, what=f"mail to {rcpt}")
        tags = dkim.util.parse_tag_value(str(received.message["DKIM-Signature"]).encode())
        return bytes(tags[b"s"])

    shown = records(await verify(tenant, name))  # the new record is not published yet
    assert shown["dkim_next"]["status"] == "missing"
    assert await selector_of_next_mail("before") == old_selector.encode()

    publish(dns, new_record)
    shown = records(await verify(tenant, name))
    assert shown["dkim"]["host"] == new_record["host"]
    assert shown["dkim"]["status"] == "ok"
    assert "dkim_next" not in shown

    async def signed_with_new() -> bool:
        return await selector_of_next_mail("after") == new_selector.encode()

    await eventually(signed_with_new, what="mail signed with the new key")
