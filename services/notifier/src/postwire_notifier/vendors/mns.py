"""Aliyun MNS's queue API over the account queues: a consumer written with MNS's SDK
(``Account(endpoint, AccessId, AccessKey).get_queue(name)``) works by changing only the
endpoint. AccessId is an API user's login, AccessKey its API key.

::

    GET    /queues/{name}/messages[?numOfMessages=n][&waitseconds=s]   (Batch)ReceiveMessage
    DELETE /queues/{name}/messages?ReceiptHandle=h                     DeleteMessage
    DELETE /queues/{name}/messages   <ReceiptHandles>…                 BatchDeleteMessage
    PUT    /queues/{name}/messages?ReceiptHandle=h&VisibilityTimeout=s ChangeMessageVisibility
    anything else under /queues                                        AccessDenied (403)

Receive (with its long poll), delete and change of visibility are ``AmqpQueues``' calls,
the same as ``/v1/queues``'; this module only checks MNS's signature and speaks MNS's
XML. Our receipt handles are hex already, so they are MNS's handles unchanged.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import logging
import re
import time
import uuid
from collections.abc import Callable, Coroutine, Iterable, Mapping
from email.utils import parsedate_to_datetime
from typing import Any
from xml.sax.saxutils import escape, unescape

from fastapi import APIRouter, Request, Response
from fastapi.routing import APIRoute

from postwire_common.errors import AuthorizationFailed, NotFound
from postwire_common.identity import Identity, Principal
from postwire_notifier.amqp_queues import AmqpQueues
from postwire_notifier.queue_receipts import STALE
from postwire_notifier.resource_store import ResourceStore

__all__ = [
    "MnsError",
    "check_signature",
    "messages_xml",
    "router",
    "sign",
    "string_to_sign",
    "visibility_xml",
]

log = logging.getLogger("postwire.notifier.mns")

NS = "http://mns.aliyuncs.com/doc/v1/"
XML = "text/xml;charset=utf-8"
CLOCK_SKEW = 15 * 60  # seconds a request's Date may be off, as MNS allows
PRIORITY = 8  # MNS's default; our queues have no priorities
MAX_BATCH = 16
MAX_WAIT = 30
MAX_VISIBILITY = 43200


class MnsError(Exception):
    """An answer in MNS's ``<Error>`` shape: HTTP status, MNS's Code, its Message."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


def unsupported(operation: str) -> MnsError:
    # MNS has no "not supported" code; AccessDenied is what it answers for an operation
    # a caller may not perform, and clients treat it as final, not as retryable.
    return MnsError(
        403,
        "AccessDenied",
        f"{operation} is not supported by postwire's MNS API: manage queues and peek "
        "with /v1/queues; queues are filled by event rules",
    )


def no_queue() -> MnsError:
    return MnsError(404, "QueueNotExist", "The queue name you provided is not exist.")


# signature -------------------------------------------------------------------------


def string_to_sign(method: str, headers: Mapping[str, str], target: str) -> str:
    """MNS's string to sign: method, Content-MD5, Content-Type, Date, the ``x-mns-*``
    headers sorted as ``name:value`` lines, and the request target exactly as sent."""
    mns = "".join(f"{k}:{headers[k]}\n" for k in sorted(headers) if k.startswith("x-mns-"))
    fields = (headers.get("content-md5", ""), headers.get("content-type", ""))
    return f"{method}\n{fields[0]}\n{fields[1]}\n{headers.get('date', '')}\n{mns}{target}"


def sign(access_key: str, text: str) -> str:
    digest = hmac.new(access_key.encode(), text.encode("utf-8"), hashlib.sha1).digest()
    return base64.b64encode(digest).decode("ascii")


def access_id(headers: Mapping[str, str], now: float) -> tuple[str, str]:
    """The AccessId and signature of ``Authorization: MNS id:sig``, once the Date is
    within :data:`CLOCK_SKEW` of ``now``."""
    header = headers.get("authorization")
    if not header:
        raise MnsError(400, "MissingAuthorizationHeader", "Authorization header is required.")
    scheme, _, credential = header.partition(" ")
    login, _, signature = credential.rpartition(":")
    if scheme != "MNS" or not login or not signature:
        raise MnsError(400, "InvalidAuthorizationHeader", "The Authorization header is invalid.")
    if "date" not in headers:
        raise MnsError(400, "MissingDateHeader", "Date header is required.")
    try:
        sent = parsedate_to_datetime(headers["date"]).timestamp()
    except (TypeError, ValueError):
        raise MnsError(400, "InvalidDateHeader", "The Date header format is invalid.") from None
    if abs(now - sent) > CLOCK_SKEW:
        raise MnsError(408, "TimeExpired", "The http request you sent is expired.")
    return login, signature


async def check_signature(identity: Identity, request: Request) -> Principal:
    headers = dict(request.headers.items())  # names come lower-case
    login, signature = access_id(headers, time.time())
    try:
        principal, key = await identity.signing_secret(login)
    except AuthorizationFailed as exc:
        raise MnsError(403, "InvalidAccessKeyId", exc.description) from None
    target = request.scope.get("raw_path") or request.url.path.encode()
    if query := request.scope.get("query_string"):
        target += b"?" + query
    expected = sign(key, string_to_sign(request.method, headers, target.decode("latin-1")))
    if not hmac.compare_digest(expected.encode(), signature.encode("latin-1")):
        raise MnsError(
            403,
            "SignatureDoesNotMatch",
            "The request signature we calculated does not match the signature you provided.",
        )
    return principal


# XML -------------------------------------------------------------------------------


def _fields(pairs: Iterable[tuple[str, object]]) -> str:
    return "".join(f"<{k}>{escape(str(v))}</{k}>" for k, v in pairs)


def message_fields(message: Mapping[str, Any], now_ms: int, visibility: int) -> str:
    """One received message (as ``AmqpQueues.receive`` gives it) in MNS's fields. The
    body is base64 (the SDK decodes it by default) and MessageBodyMD5 is that text's."""
    body = base64.b64encode(message["body"].encode("utf-8")).decode("ascii")
    enqueued = int(message["enqueue_time"].timestamp() * 1000)
    count = int(message["dequeue_count"])
    return _fields(
        [
            ("MessageId", message["message_id"]),
            ("ReceiptHandle", message["receipt_handle"]),
            ("MessageBodyMD5", hashlib.md5(body.encode()).hexdigest().upper()),  # noqa: S324
            ("MessageBody", body),
            ("EnqueueTime", enqueued),
            ("NextVisibleTime", now_ms + visibility * 1000),
            # We keep no first-receive time: now on the first receive, else the enqueue time.
            ("FirstDequeueTime", now_ms if count == 1 else enqueued),
            ("DequeueCount", count),
            ("Priority", PRIORITY),
        ]
    )


def messages_xml(found: list[dict[str, Any]], now_ms: int, visibility: int, *, batch: bool) -> str:
    each = [message_fields(m, now_ms, visibility) for m in found]
    head = '<?xml version="1.0" encoding="UTF-8"?>\n'
    if not batch:
        return f'{head}<Message xmlns="{NS}">{each[0]}</Message>'
    inner = "".join(f"<Message>{m}</Message>" for m in each)
    return f'{head}<Messages xmlns="{NS}">{inner}</Messages>'


def visibility_xml(handle: str, next_visible_ms: int) -> str:
    """ChangeMessageVisibility's answer: the new handle and when the message is visible."""
    fields = _fields([("ReceiptHandle", handle), ("NextVisibleTime", next_visible_ms)])
    head = '<?xml version="1.0" encoding="UTF-8"?>\n'
    return f'{head}<ChangeVisibility xmlns="{NS}">{fields}</ChangeVisibility>'


def error_xml(error: MnsError, request_id: str, host_id: str) -> str:
    fields = _fields(
        [
            ("Code", error.code),
            ("Message", error.message),
            ("RequestId", request_id),
            ("HostId", host_id),
        ]
    )
    return f'<?xml version="1.0" encoding="UTF-8"?>\n<Error xmlns="{NS}">{fields}</Error>'


_HANDLE = re.compile(r"<ReceiptHandle>([^<]*)</ReceiptHandle>")
_HANDLES = re.compile(
    r'\s*(<\?xml[^>]*\?>)?\s*<ReceiptHandles(\s+xmlns="[^"]*")?\s*>'
    r"(\s*<ReceiptHandle>[^<]*</ReceiptHandle>)*\s*</ReceiptHandles>\s*"
)


def receipt_handles(body: bytes, headers: Mapping[str, str]) -> list[str]:
    """The handles of a BatchDeleteMessage body (1-16, distinct, in order)."""
    md5 = headers.get("content-md5")
    if md5 is not None:
        raw = hashlib.md5(body)  # noqa: S324 - MNS's integrity check, not security
        sent = {base64.b64encode(raw.digest()), base64.b64encode(raw.hexdigest().encode())}
        if md5.encode("latin-1") not in sent:  # the SDK sends base64 of the hex digest
            raise MnsError(400, "InvalidDegist", "The Content-MD5 you specified is invalid.")
    # Read with a pattern, not an XML parser: the body has one shape, and a pattern
    # expands no entities.
    text = body.decode("utf-8", "replace")
    if not _HANDLES.fullmatch(text):
        raise MnsError(400, "MalformedXML", "The XML you provided was not well-formed.")
    handles = [unescape(h).strip() for h in _HANDLE.findall(text)]
    if not 1 <= len(handles) <= MAX_BATCH:
        raise MnsError(400, "InvalidArgument", "ReceiptHandles must hold 1 to 16 ReceiptHandle.")
    return list(dict.fromkeys(handles))


def batch_errors_xml(stale: list[str]) -> str:
    each = "".join(
        "<Error>"
        + _fields([("ErrorCode", "ReceiptHandleError"), ("ErrorMessage", STALE)])
        + _fields([("ReceiptHandle", h)])
        + "</Error>"
        for h in stale
    )
    return f'<?xml version="1.0" encoding="UTF-8"?>\n<Errors xmlns="{NS}">{each}</Errors>'


# parameters ------------------------------------------------------------------------


def number(query: Mapping[str, str], name: str, low: int, high: int) -> int | None:
    value = query.get(name)
    if value is None:
        return None
    if not value.isascii() or not value.isdigit() or not low <= int(value) <= high:
        raise MnsError(
            400, "InvalidArgument", f"The value of {name} should between {low} and {high}."
        )
    return int(value)


# MNS's names of the requests we do not serve, by path depth and method.
OPERATIONS = {
    (1, "GET"): "ListQueue",
    (2, "GET"): "GetQueueAttributes",
    (2, "PUT"): "CreateQueue/SetQueueAttributes",
    (2, "DELETE"): "DeleteQueue",
    (3, "POST"): "SendMessage",
    (3, "GET"): "PeekMessage",
}


def operation(method: str, path: str) -> str:
    return OPERATIONS.get((len(path.strip("/").split("/")), method), f"{method} {path}")


# routes ----------------------------------------------------------------------------


class MnsRoute(APIRoute):
    """Every answer carries x-mns-request-id; every error is MNS's ``<Error>``."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def answered(request: Request) -> Response:
            request_id = uuid.uuid4().hex.upper()
            error: MnsError | None = None
            try:
                response = await handler(request)
            except MnsError as exc:
                error = exc
            except Exception:  # the SDK reads only MNS's <Error>, and retries a 500
                log.exception("MNS request failed", extra={"request_id": request_id})
                error = MnsError(500, "InternalError", "Internal error.")
            if error is not None:
                xml = error_xml(error, request_id, str(request.base_url).rstrip("/"))
                response = Response(xml, error.status, media_type=XML)
            response.headers["x-mns-request-id"] = request_id
            return response

        return answered


def router(store: ResourceStore, messages: AmqpQueues) -> APIRouter:
    api = APIRouter(route_class=MnsRoute, include_in_schema=False)

    async def caller_queue(request: Request, name: str) -> tuple[Principal, dict[str, Any]]:
        principal = await check_signature(request.app.state.identity, request)
        try:  # another account's queue is as absent as one that never was
            return principal, await store.queue(principal.tenant_id, name)
        except NotFound:
            raise no_queue() from None

    @api.get("/queues/{name}/messages")
    async def receive(name: str, request: Request) -> Response:
        principal, queue = await caller_queue(request, name)
        query = request.query_params
        if "peekonly" in query:
            raise unsupported("PeekMessage")
        if unknown := set(query) - {"numOfMessages", "waitseconds"}:
            raise MnsError(400, "InvalidQueryString", f"Invalid query string: {min(unknown)}.")
        most = number(query, "numOfMessages", 1, MAX_BATCH)
        wait = number(query, "waitseconds", 0, MAX_WAIT) or 0
        visibility = int(queue["visibility_timeout"])
        try:
            found = await messages.receive(principal.tenant_id, name, most or 1, visibility, wait)
        except NotFound:  # deleted while we waited
            raise no_queue() from None
        if not found:
            raise MnsError(404, "MessageNotExist", "Message not exist.")
        xml = messages_xml(found, int(time.time() * 1000), visibility, batch=most is not None)
        return Response(xml, media_type=XML)

    @api.delete("/queues/{name}/messages")
    async def delete(name: str, request: Request) -> Response:
        principal, _ = await caller_queue(request, name)
        handle = request.query_params.get("ReceiptHandle")
        if handle is None:
            body = await request.body()
            if not body:
                raise MnsError(400, "MissingReceiptHandle", "ReceiptHandle is required.")
            handles = receipt_handles(body, request.headers)
            done = await messages.delete_many(principal.tenant_id, name, handles)
            if stale := [h for h in handles if h not in done]:
                return Response(batch_errors_xml(stale), 404, media_type=XML)
            return Response(status_code=204)
        try:
            await messages.delete(principal.tenant_id, name, handle)
        except NotFound:
            raise MnsError(400, "ReceiptHandleError", STALE) from None
        return Response(status_code=204)

    @api.put("/queues/{name}/messages")
    async def change_visibility(name: str, request: Request) -> Response:
        principal, _ = await caller_queue(request, name)
        query = request.query_params
        handle = query.get("ReceiptHandle")
        if handle is None:
            raise MnsError(400, "MissingReceiptHandle", "ReceiptHandle is required.")
        seconds = number(query, "VisibilityTimeout", 0, MAX_VISIBILITY)
        if seconds is None:
            raise MnsError(400, "MissingVisibilityTimeout", "VisibilityTimeout is required.")
        try:
            fresh, visible_at = await messages.change_visibility(
                principal.tenant_id, name, handle, seconds
            )
        except NotFound:  # as DeleteMessage answers a stale handle
            raise MnsError(400, "ReceiptHandleError", STALE) from None
        xml = visibility_xml(fresh, int(visible_at.timestamp() * 1000))
        return Response(xml, media_type=XML)

    @api.api_route("/queues", methods=["GET", "POST", "PUT", "DELETE"])
    @api.api_route("/queues/{rest:path}", methods=["GET", "POST", "PUT", "DELETE"])
    async def other(request: Request) -> Response:
        await check_signature(request.app.state.identity, request)
        raise unsupported(operation(request.method, request.url.path))

    return api
