"""Aliyun MNS's own SDK (``aliyun-mns-sdk``) consuming an account queue that an event rule
fills: the seed's ``env_id=…&…&event=deliver…`` line of a mail the loopback MX received,
long polling, receipt handles, batch receive and delete, changes of visibility, and
refusals the SDK's way."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any, TypeVar
from urllib.parse import parse_qs

import httpx
import pytest
from mns.account import Account
from mns.mns_exception import MNSServerException
from mns.queue import Queue

from postwire_testkit.api import Tenant, envelope
from postwire_testkit.platform import PlatformProcess
from postwire_testkit.smtp import SmtpSink
from postwire_testkit.wait import eventually

T = TypeVar("T")


def mns_queue(platform: PlatformProcess, access_id: str, access_key: str, name: str) -> Queue:
    return Account(platform.url, access_id, access_key).get_queue(name)


async def call(method: Callable[..., T], *args: Any) -> T:
    """The SDK blocks (http.client): run it off the event loop."""
    return await asyncio.to_thread(method, *args)


async def refused(method: Callable[..., Any], *args: Any) -> MNSServerException:
    with pytest.raises(MNSServerException) as caught:
        await call(method, *args)
    return caught.value


async def queue_with_rule(tenant: Tenant, name: str, event_type: str) -> None:
    """A queue whose received messages are visible again after 3 s, and a rule filling it."""
    api: httpx.AsyncClient = tenant.client("notifier")
    answer = await api.post("/v1/queues", json={"name": name, "visibility_timeout": 3})
    assert answer.status_code == 201, answer.text
    rule = {"name": name, "event_types": [event_type], "endpoints": [f"queue:{name}"]}
    answer = await api.post("/v1/event-rules", json=rule)
    assert answer.status_code == 201, answer.text


async def test_a_delivered_mail_reaches_the_sdk_consumer_as_the_seeds_line(
    platform: PlatformProcess, tenant: Tenant, mx: SmtpSink
) -> None:
    await queue_with_rule(tenant, "dm-results", "Deliver:SendSuccessfully")
    rcpt = f"mns.{tenant.name}@example.org"
    sent = envelope(await tenant.send([rcpt]))["Result"]["messages"][0]
    await eventually(lambda: mx.for_rcpt(rcpt), what="mail at the MX")
    queue = mns_queue(platform, tenant.api_user, tenant.api_key, "dm-results")

    message = await call(queue.receive_message, 20)  # long poll
    fields = parse_qs(message.message_body.decode(), keep_blank_values=True, strict_parsing=True)
    assert list(fields)[:3] == ["env_id", "msg_id", "account"]
    assert fields["env_id"] == [sent["env_id"]]
    assert fields["msg_id"] == [sent["msg_id"]]
    assert (fields["rcpt"], fields["from"]) == ([rcpt], [tenant.sender])
    assert (fields["status"], fields["event"], fields["err_code"]) == (["0"], ["deliver"], ["250"])
    assert message.dequeue_count == 1
    assert message.next_visible_time > message.enqueue_time

    # Received, it is invisible.
    assert (await refused(queue.receive_message, 0)).type == "MessageNotExist"

    await call(queue.delete_message, message.receipt_handle)
    stale = await refused(queue.delete_message, message.receipt_handle)
    assert stale.type == "ReceiptHandleError"
    # Deleted, it does not come back once its visibility timeout (3 s) has passed.
    assert (await refused(queue.receive_message, 6)).type == "MessageNotExist"


async def test_a_changed_visibility_gives_a_new_handle_and_a_new_time(
    platform: PlatformProcess, tenant: Tenant
) -> None:
    await queue_with_rule(tenant, "later", "Deliver:Request")
    await tenant.send([f"later.{tenant.name}@example.org"])
    queue = mns_queue(platform, tenant.api_user, tenant.api_key, "later")
    first = await call(queue.receive_message, 20)

    # Past the queue's own visibility timeout (3 s).
    changed = await call(queue.change_message_visibility, first.receipt_handle, 6)
    assert changed.receipt_handle != first.receipt_handle
    assert int(changed.next_visible_time) >= int(first.next_visible_time) + 2_000
    stale = await refused(queue.change_message_visibility, first.receipt_handle, 0)
    assert stale.type == "ReceiptHandleError"
    assert (await refused(queue.delete_message, first.receipt_handle)).type == (
        "ReceiptHandleError"
    )
    assert (await refused(queue.receive_message, 4)).type == "MessageNotExist"

    again = await call(queue.receive_message, 10)
    assert time.time() * 1000 >= int(changed.next_visible_time) - 100
    assert (again.message_id, again.dequeue_count) == (first.message_id, 2)
    assert again.message_body == first.message_body
    # Shortened to 0: visible again at once, under yet another handle.
    now = await call(queue.change_message_visibility, again.receipt_handle, 0)
    last = await call(queue.receive_message, 0)
    assert (last.message_id, last.dequeue_count) == (first.message_id, 3)
    assert (await refused(queue.delete_message, now.receipt_handle)).type == "ReceiptHandleError"
    await call(queue.delete_message, last.receipt_handle)
    assert (await refused(queue.receive_message, 5)).type == "MessageNotExist"


async def test_batch_receive_and_batch_delete(platform: PlatformProcess, tenant: Tenant) -> None:
    await queue_with_rule(tenant, "requests", "Deliver:Request")
    rcpts = [f"batch{i}.{tenant.name}@example.org" for i in range(3)]
    sent = envelope(await tenant.send(rcpts))["Result"]["messages"]
    queue = mns_queue(platform, tenant.api_user, tenant.api_key, "requests")

    got: list[Any] = []

    async def all_three() -> bool:
        try:
            got.extend(await call(queue.batch_receive_message, 16, 2))
        except MNSServerException as exc:
            if exc.type != "MessageNotExist":
                raise
        return len(got) >= 3

    await eventually(all_three, within=30, what="three messages")
    bodies = [parse_qs(m.message_body.decode()) for m in got]
    assert sorted(b["env_id"][0] for b in bodies) == sorted(m["env_id"] for m in sent)
    assert sorted(b["rcpt"][0] for b in bodies) == sorted(rcpts)

    handles = [m.receipt_handle for m in got]
    await call(queue.batch_delete_message, handles[:2])
    partly = await refused(queue.batch_delete_message, handles)  # two of them are stale
    assert partly.type == "ReceiptHandleError"
    assert sorted(e["ReceiptHandle"] for e in partly.sub_errors) == sorted(handles[:2])
    # The third was deleted by the partly failed batch: none comes back after 3 s.
    assert (await refused(queue.batch_receive_message, 16, 6)).type == "MessageNotExist"


async def test_wrong_credentials_and_other_accounts_queues_are_refused(
    platform: PlatformProcess, tenant: Tenant, other_tenant: Tenant
) -> None:
    await queue_with_rule(tenant, "private", "Deliver:Request")
    wrong_key = mns_queue(platform, tenant.api_user, tenant.api_key + "x", "private")
    assert (await refused(wrong_key.receive_message, 0)).type == "SignatureDoesNotMatch"
    nobody = mns_queue(platform, f"{tenant.name}.nobody", tenant.api_key, "private")
    assert (await refused(nobody.receive_message, 0)).type == "InvalidAccessKeyId"
    # Another account's queue answers as a queue that does not exist.
    theirs = mns_queue(platform, other_tenant.api_user, other_tenant.api_key, "private")
    assert (await refused(theirs.receive_message, 0)).type == "QueueNotExist"
    assert (await refused(theirs.delete_message, "00" * 16)).type == "QueueNotExist"
    missing = mns_queue(platform, tenant.api_user, tenant.api_key, "never-made")
    assert (await refused(missing.receive_message, 0)).type == "QueueNotExist"


async def test_operations_without_a_counterpart_answer_access_denied(
    platform: PlatformProcess, tenant: Tenant
) -> None:
    from mns.queue import Message

    await queue_with_rule(tenant, "readonly", "Deliver:Request")
    queue = mns_queue(platform, tenant.api_user, tenant.api_key, "readonly")
    for method, args in [
        (queue.send_message, (Message("hello"),)),
        (queue.peek_message, ()),
        (queue.get_attributes, ()),
        (queue.delete, ()),
    ]:
        error = await refused(method, *args)
        assert error.type == "AccessDenied", method
        assert "/v1/queues" in error.message
    answer = await tenant.client("notifier").get("/v1/queues/readonly")
    assert answer.status_code == 200  # still there, still empty
    assert envelope(answer)["Result"]["depth"] == 0
