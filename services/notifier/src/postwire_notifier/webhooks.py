"""Webhooks: a URL that must answer 200 to a GET and a signed POST before it is accepted.

Each webhook gets an ``app_key`` (shown once) that signs its pushes; the verification POST
is signed with it too, so the receiver can check its verification code on it.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from postwire_common.errors import EmptyValue, InvalidValue
from postwire_common.identity import Principal
from postwire_common.ids import new_id, new_secret
from postwire_common.schemas import EventType, MailEvent
from postwire_notifier.http_client import Answer, SafeClient, check_url
from postwire_notifier.payload import push_body
from postwire_notifier.signature import new_token, signed
from postwire_notifier.store import NotifierStore, Webhook
from postwire_notifier.vendors import sendcloud

MAX_WEBHOOKS = 10


def check_events(events: list[str]) -> list[str]:
    if not events:
        raise EmptyValue("events needs at least one event type")
    known = {e.value for e in EventType}
    unknown = [e for e in events if e not in known]
    if unknown:
        raise InvalidValue(
            f"unknown event type {unknown[0]!r}; use {', '.join(e.value for e in EventType)}"
        )
    return sorted(set(events))


def describe(answer: Answer) -> str:
    if answer.error:
        return answer.error
    return f"HTTP {answer.status}"


def push_fields(event: MailEvent, region: str, push_format: str) -> dict[str, Any]:
    """The fields of a webhook push of ``event``, before signing, in the webhook's format."""
    if push_format == sendcloud.FORMAT:
        return sendcloud.push_fields(event)
    return push_body(event, region)


def post_args(fields: dict[str, Any], push_format: str) -> dict[str, Any]:
    """``SafeClient.request`` arguments of a signed POST in the webhook's format."""
    if push_format == sendcloud.FORMAT:
        return sendcloud.form_request(fields)
    return {"json": fields}


async def create_webhook(
    store: NotifierStore,
    client: SafeClient,
    principal: Principal,
    url: str,
    events: list[str],
    push_format: str = "postwire",
) -> dict[str, Any]:
    url = check_url(url)
    events = check_events(events)
    app_key = new_secret()
    verify = signed({"event": "verify"}, app_key, new_token())
    for method, args in (("GET", {}), ("POST", post_args(verify, push_format))):
        answer = await client.request(method, url, **args)
        if not answer.ok:
            raise InvalidValue(
                f"{url} must answer 200 to {method} before it can be used; it answered "
                f"{describe(answer)}"
            )
    hook = Webhook(new_id(), principal.tenant_id, url, events, app_key, push_format)
    await store.insert_webhook(hook, MAX_WEBHOOKS)
    return {"id": hook.id, "url": url, "events": events, "format": push_format, "app_key": app_key}


async def test_push(client: SafeClient, hook: Webhook, event: str, region: str) -> dict[str, Any]:
    """Push a sample event of type ``event`` now, once, and report how it went."""
    kind = EventType(check_events([event])[0])
    now = datetime.now(UTC)
    sample = MailEvent(
        event_id=f"test:{new_id()}",
        event=kind,
        env_id="TEST" + new_id()[4:],
        msg_id="<test@postwire.invalid>",
        tenant_id=hook.tenant_id,
        account="sender@example.com",
        sender="sender@example.com",
        rcpt="recipient@example.com",
        label="test",
        recv_time=now,
        time=now,
        url="https://example.com/" if kind is EventType.CLICK else None,
    )
    fields = signed(push_fields(sample, region, hook.push_format), hook.app_key, new_token())
    answer = await client.request("POST", hook.url, **post_args(fields, hook.push_format))
    return {
        "ok": answer.ok,
        "http_status": answer.status,
        "latency_ms": answer.latency_ms,
        "error": answer.error,
    }
