"""TLS policies through the API: an account requires TLS for a recipient domain (or for
every domain, ``*``), and mail to an MX that cannot give verified TLS fails with what was
wrong, while other domains and other accounts deliver as before."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from postwire_testkit.api import Tenant, envelope
from postwire_testkit.dns import LoopbackDns
from postwire_testkit.smtp import SmtpSink
from postwire_testkit.tls import self_signed
from postwire_testkit.wait import eventually

SELF_SIGNED = "selfsigned.example"


@pytest.fixture(scope="module")
def self_signed_mx(dns: LoopbackDns, mx: SmtpSink) -> Iterator[SmtpSink]:
    """An MX (on another loopback address, the delivery port) with STARTTLS and a
    self-signed certificate for its name."""
    cert = self_signed(f"mx.{SELF_SIGNED}")
    sink = SmtpSink(host="127.0.0.4", port=mx.port, tls=cert.server_context()).start()
    dns.mail_domain(SELF_SIGNED, ip="127.0.0.4")
    yield sink
    sink.stop()


def api(tenant: Tenant) -> httpx.AsyncClient:
    return tenant.client("ingest")


async def result(answer: httpx.Response, status: int = 200) -> Any:
    assert answer.status_code == status, answer.text
    return envelope(answer)["Result"]


async def put(tenant: Tenant, domain: str, mode: str) -> dict[str, Any]:
    found: dict[str, Any] = await result(
        await api(tenant).put(f"/v1/tls-policies/{domain}", json={"mode": mode})
    )
    return found


async def send(tenant: Tenant, rcpts: list[str]) -> list[str]:
    messages = (await result(await tenant.send(rcpts), 202))["messages"]
    return [m["env_id"] for m in messages]


async def last_event(tenant: Tenant, env_id: str) -> dict[str, Any]:
    shown = await result(await tenant.message(env_id))
    event: dict[str, Any] = shown["events"][-1]
    return event


async def test_require_fails_mail_to_an_mx_without_starttls(tenant: Tenant, mx: SmtpSink) -> None:
    await put(tenant, "Example.ORG", "require")
    strict, other = f"strict.{tenant.name}@example.org", f"other.{tenant.name}@example.net"
    strict_id, other_id = await send(tenant, [strict, other])

    assert await tenant.wait_for_status(strict_id, "failed", "delivered") == "failed"
    failed = await last_event(tenant, strict_id)
    assert failed["event"] == "failed"
    assert failed["status"] == 4
    assert failed["err_msg"] == (
        "TLS required for example.org: mx.example.org does not offer STARTTLS"
    )
    assert mx.for_rcpt(strict) == []  # nothing went out in plain text
    # The request's other domain has no rule: opportunistic, so plain text is fine.
    assert await tenant.wait_for_status(other_id, "failed", "delivered") == "delivered"


async def test_require_fails_mail_to_an_mx_with_a_self_signed_certificate(
    tenant: Tenant, self_signed_mx: SmtpSink
) -> None:
    plain_rcpt = f"before.{tenant.name}@{SELF_SIGNED}"
    [plain_id] = await send(tenant, [plain_rcpt])  # no rule yet: opportunistic
    assert await tenant.wait_for_status(plain_id, "failed", "delivered") == "delivered"
    [received] = self_signed_mx.for_rcpt(plain_rcpt)
    assert received.tls  # STARTTLS offered and taken, the certificate not checked

    await put(tenant, SELF_SIGNED, "require")
    rcpt = f"strict.{tenant.name}@{SELF_SIGNED}"
    [env_id] = await send(tenant, [rcpt])
    assert await tenant.wait_for_status(env_id, "failed", "delivered") == "failed"
    failed = await last_event(tenant, env_id)
    assert failed["err_msg"] == (
        f"TLS required for {SELF_SIGNED}: mx.{SELF_SIGNED}: certificate verify failed: "
        "self-signed certificate"
    )
    assert self_signed_mx.for_rcpt(rcpt) == []


async def test_the_wildcard_covers_domains_without_a_rule_of_their_own(tenant: Tenant) -> None:
    await put(tenant, "*", "require")
    await put(tenant, "example.com", "opportunistic")
    covered, own = f"w.{tenant.name}@example.net", f"w.{tenant.name}@example.com"
    covered_id, own_id = await send(tenant, [covered, own])
    assert await tenant.wait_for_status(covered_id, "failed", "delivered") == "failed"
    assert await tenant.wait_for_status(own_id, "failed", "delivered") == "delivered"

    # Without the wildcard, mail is opportunistic again (other ingest processes may
    # remember the rule for up to 5 s: send until one is delivered).
    await result(await api(tenant).delete("/v1/tls-policies/*"))

    async def delivered_again() -> str | None:
        [env_id] = await send(tenant, [covered])
        status = await tenant.wait_for_status(env_id, "failed", "delivered")
        return env_id if status == "delivered" else None

    await eventually(delivered_again, within=30, what="mail delivered without *")


async def test_policies_are_listed_shown_replaced_and_deleted(tenant: Tenant) -> None:
    made = await put(tenant, "Example.ORG.", "require")
    assert (made["domain"], made["mode"]) == ("example.org", "require")
    assert (await put(tenant, "example.org", "none"))["mode"] == "none"
    await put(tenant, "*", "opportunistic")
    listed = await result(await api(tenant).get("/v1/tls-policies"))
    assert [(p["domain"], p["mode"]) for p in listed] == [
        ("*", "opportunistic"),
        ("example.org", "none"),
    ]
    shown = await result(await api(tenant).get("/v1/tls-policies/EXAMPLE.org"))
    assert shown["mode"] == "none"

    await result(await api(tenant).delete("/v1/tls-policies/example.org"))
    gone = await api(tenant).get("/v1/tls-policies/example.org")
    assert (gone.status_code, envelope(gone)["Code"]) == (404, "not_found")
    again = await api(tenant).delete("/v1/tls-policies/example.org")
    assert (again.status_code, envelope(again)["Code"]) == (404, "not_found")


@pytest.mark.parametrize(
    ("domain", "body", "code"),
    [
        ("example.org", {"mode": "sometimes"}, "invalid_value"),
        ("example.org", {"mode": "REQUIRE"}, "invalid_value"),
        ("example.org", {"mode": "require", "extra": 1}, "invalid_value"),
        ("example.org", {"mode": None}, "invalid_value"),
        ("example.org", {}, "empty_value"),
        ("not a domain", {"mode": "require"}, "invalid_value"),
        ("*.example.org", {"mode": "require"}, "invalid_value"),
        ("localhost", {"mode": "require"}, "invalid_value"),
        ("192.0.2.1", {"mode": "require"}, "invalid_value"),
    ],
)
async def test_bad_input_is_refused_and_changes_nothing(
    tenant: Tenant, domain: str, body: dict[str, Any], code: str
) -> None:
    answer = await api(tenant).put(f"/v1/tls-policies/{domain}", json=body)
    assert (answer.status_code, envelope(answer)["Code"]) == (400, code), answer.text
    assert await result(await api(tenant).get("/v1/tls-policies")) == []


async def test_another_accounts_policies_are_invisible(
    tenant: Tenant, other_tenant: Tenant, mx: SmtpSink
) -> None:
    await put(tenant, "example.net", "require")
    assert await result(await api(other_tenant).get("/v1/tls-policies")) == []
    for method in ("GET", "DELETE"):
        answer = await api(other_tenant).request(method, "/v1/tls-policies/example.net")
        assert (answer.status_code, envelope(answer)["Code"]) == (404, "not_found")
    assert (await result(await api(tenant).get("/v1/tls-policies/example.net")))["mode"] == (
        "require"
    )
    # Nor do they apply to its mail.
    [env_id] = await send(other_tenant, [f"free.{other_tenant.name}@example.net"])
    assert await other_tenant.wait_for_status(env_id, "failed", "delivered") == "delivered"
