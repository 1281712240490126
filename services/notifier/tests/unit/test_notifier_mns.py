"""MNS's wire format, checked against the MNS SDK's own signer, encoders and decoders."""

from __future__ import annotations

import base64
import hashlib
from datetime import UTC, datetime
from email.utils import format_datetime

import pytest
from mns.auth import Credentials
from mns.mns_client import MNSClient
from mns.mns_xml_handler import (
    BatchDeleteMessageDecoder,
    BatchRecvMessageDecoder,
    ChangeMsgVisDecoder,
    ErrorDecoder,
    ReceiptHandlesEncoder,
    RecvMessageDecoder,
)

from postwire_notifier.vendors.mns import (
    MnsError,
    access_id,
    batch_errors_xml,
    error_xml,
    messages_xml,
    number,
    operation,
    receipt_handles,
    sign,
    string_to_sign,
    visibility_xml,
)

NOW = 1_764_600_000.0
DATE = format_datetime(datetime.fromtimestamp(NOW, UTC), usegmt=True)


def sdk_signature(method: str, headers: dict[str, str], target: str) -> str:
    client = MNSClient("http://127.0.0.1:1", "acct.user", "s3cret-key")
    credential = Credentials("acct.user", "s3cret-key", "")
    return str(client.get_signature(method, headers, target, credential))


@pytest.mark.parametrize(
    ("method", "headers", "target"),
    [
        ("GET", {"x-mns-version": "2015-06-06", "date": DATE}, "/queues/q/messages?waitseconds=3"),
        ("GET", {"x-mns-version": "2015-06-06", "date": DATE}, "/queues/q/messages"),
        (
            "DELETE",
            {
                "x-mns-version": "2015-06-06",
                "x-mns-user-request-id": "r1",
                "content-md5": "abc=",
                "content-type": "text/xml;charset=UTF-8",
                "date": DATE,
                "host": "127.0.0.1:1",
            },
            "/queues/q/messages",
        ),
    ],
)
def test_the_signature_is_the_sdks(method: str, headers: dict[str, str], target: str) -> None:
    ours = "MNS acct.user:" + sign("s3cret-key", string_to_sign(method, headers, target))
    assert ours == sdk_signature(method, headers, target)


def test_the_signature_covers_the_query_and_the_mns_headers() -> None:
    headers = {"x-mns-version": "2015-06-06", "date": DATE}
    base = string_to_sign("GET", headers, "/queues/q/messages?waitseconds=3")
    assert base != string_to_sign("GET", headers, "/queues/q/messages?waitseconds=30")
    assert base != string_to_sign("GET", headers | {"x-mns-version": "x"}, "/queues/q/messages")


@pytest.mark.parametrize(
    ("headers", "code"),
    [
        ({"date": DATE}, "MissingAuthorizationHeader"),
        ({"authorization": "Basic abc", "date": DATE}, "InvalidAuthorizationHeader"),
        ({"authorization": "MNS nocolon", "date": DATE}, "InvalidAuthorizationHeader"),
        ({"authorization": "MNS a.b:sig"}, "MissingDateHeader"),
        ({"authorization": "MNS a.b:sig", "date": "yesterday"}, "InvalidDateHeader"),
        (
            {"authorization": "MNS a.b:sig", "date": format_datetime(datetime.now(UTC), True)},
            "TimeExpired",
        ),
    ],
)
def test_malformed_or_stale_authorization(headers: dict[str, str], code: str) -> None:
    with pytest.raises(MnsError) as caught:
        access_id(headers, NOW)
    assert caught.value.code == code


def test_a_date_within_fifteen_minutes_is_accepted() -> None:
    late = format_datetime(datetime.fromtimestamp(NOW - 14 * 60, UTC), usegmt=True)
    assert access_id({"authorization": "MNS acct.u:c2ln", "date": late}, NOW) == (
        "acct.u",
        "c2ln",
    )


MESSAGE = {
    "message_id": "5f1e",
    "receipt_handle": "ab" * 16,
    "body": "env_id=1&rcpt=a@b.example&err_msg=250 Send Mail OK",
    "content_type": "text/plain",
    "enqueue_time": datetime.fromtimestamp(NOW - 5, UTC),
    "dequeue_count": 1,
}


def test_a_received_message_decodes_with_the_sdk() -> None:
    xml = messages_xml([MESSAGE], int(NOW * 1000), 30, batch=False)
    data = RecvMessageDecoder.decode(xml, True)
    assert data["MessageBody"] == MESSAGE["body"].encode()
    assert data["ReceiptHandle"] == "ab" * 16
    assert int(data["NextVisibleTime"]) == int(NOW * 1000) + 30_000
    assert int(data["EnqueueTime"]) == int((NOW - 5) * 1000)
    assert int(data["FirstDequeueTime"]) == int(NOW * 1000)
    assert (data["DequeueCount"], data["Priority"]) == ("1", "8")
    encoded = base64.b64encode(MESSAGE["body"].encode())
    assert data["MessageBodyMD5"] == hashlib.md5(encoded).hexdigest().upper()  # noqa: S324


def test_a_batch_decodes_with_the_sdk() -> None:
    again = MESSAGE | {"message_id": "77", "dequeue_count": 3, "body": "é & <b>"}
    xml = messages_xml([MESSAGE, again], int(NOW * 1000), 30, batch=True)
    got = BatchRecvMessageDecoder.decode(xml, True)
    assert [m.message_id for m in got] == ["5f1e", "77"]
    assert got[1].message_body == "é & <b>".encode()
    assert got[1].first_dequeue_time == got[1].enqueue_time  # not kept past the first


def test_a_change_of_visibility_decodes_with_the_sdk() -> None:
    handle, visible = ChangeMsgVisDecoder.decode(visibility_xml("cd" * 16, 1_764_600_030_000))
    assert (handle, int(visible)) == ("cd" * 16, 1_764_600_030_000)


def test_errors_decode_with_the_sdk() -> None:
    xml = error_xml(MnsError(404, "QueueNotExist", "no <queue>"), "RID", "http://h")
    assert ErrorDecoder.decodeError(xml) == ("QueueNotExist", "no <queue>", "RID", "http://h", None)
    code, _, _, _, each = BatchDeleteMessageDecoder.decodeError(batch_errors_xml(["h1", "h2"]))
    assert code == "ReceiptHandleError"
    assert [e["ReceiptHandle"] for e in each] == ["h1", "h2"]


def test_batch_delete_body_as_the_sdk_sends_it() -> None:
    body = ReceiptHandlesEncoder.encode(["h1", "h2", "h1"])
    md5 = base64.b64encode(hashlib.md5(body).hexdigest().encode()).decode()  # noqa: S324
    assert receipt_handles(body, {"content-md5": md5}) == ["h1", "h2"]
    assert receipt_handles(body, {}) == ["h1", "h2"]  # no Content-MD5: not checked


@pytest.mark.parametrize(
    ("body", "headers", "code"),
    [
        (b"<ReceiptHandles><ReceiptHandle>h", {}, "MalformedXML"),
        (b'<!DOCTYPE x [<!ENTITY a "b">]><ReceiptHandles/>', {}, "MalformedXML"),
        (b"<ReceiptHandles></ReceiptHandles>", {}, "InvalidArgument"),
        (ReceiptHandlesEncoder.encode([f"h{i}" for i in range(17)]), {}, "InvalidArgument"),
        (ReceiptHandlesEncoder.encode(["h"]), {"content-md5": "bm90IGl0"}, "InvalidDegist"),
    ],
)
def test_bad_batch_delete_bodies(body: bytes, headers: dict[str, str], code: str) -> None:
    with pytest.raises(MnsError) as caught:
        receipt_handles(body, headers)
    assert caught.value.code == code


@pytest.mark.parametrize("value", ["0", "17", "-1", "1.5", "x", "١"])
def test_numbers_out_of_range(value: str) -> None:
    with pytest.raises(MnsError) as caught:
        number({"numOfMessages": value}, "numOfMessages", 1, 16)
    assert caught.value.code == "InvalidArgument"
    assert number({}, "numOfMessages", 1, 16) is None
    assert number({"numOfMessages": "16"}, "numOfMessages", 1, 16) == 16


def test_operations_are_named_as_mns_names_them() -> None:
    assert operation("POST", "/queues/q/messages") == "SendMessage"
    assert operation("PUT", "/queues/q") == "CreateQueue/SetQueueAttributes"
    assert operation("GET", "/queues/q") == "GetQueueAttributes"
    assert operation("GET", "/queues") == "ListQueue"
    assert operation("POST", "/queues/q/x/y") == "POST /queues/q/x/y"
