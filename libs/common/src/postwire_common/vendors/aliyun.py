"""Aliyun's RPC wire protocol, as DirectMail's SDK (``alibabacloud-dm20151123``) speaks it.

Every call is ``POST /`` with form-encoded parameters, split between the query string
and the body (merged here). Two signatures, both with the API user's login as the
AccessKeyId and its API key as the AccessKeySecret (``Identity.signing_secret``):

- ``ACS3-HMAC-SHA256`` (the SDK's default): ``Authorization: ACS3-HMAC-SHA256
  Credential=AK,SignedHeaders=a;b,Signature=hex`` over the method, path, canonical query,
  the signed headers and the body's SHA-256 (``x-acs-content-sha256``, checked too);
  the time is ``x-acs-date``, the nonce ``x-acs-signature-nonce``.
- RPC HMAC-SHA1 1.0 (``signature_algorithm='v2'``): ``Signature`` in the query, base64 of
  HMAC-SHA1(secret + "&") over ``POST&%2F&`` + every other parameter, sorted and encoded.

Answers: success is the action's JSON with a fresh ``RequestId``; an error is HTTP 4xx/5xx
``{"RequestId", "HostId", "Code", "Message"}``, which the SDK raises with ``code``.
A nonce is used once within the signature window: per process for the read actions
(``Nonces``), in a table of the service's schema for the ones that change something
(``StoredNonces``: a replay to another process or replica is refused too).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import time
import uuid
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol
from urllib.parse import parse_qsl, quote

import asyncpg
from fastapi import Request, Response
from pydantic_core import to_json

from postwire_common import errors
from postwire_common.http.actions import Action, Dialect
from postwire_common.identity import Identity, Principal

VERSION = "2015-11-23"  # DirectMail's API version, the only Aliyun product answered at /
ACS3 = "ACS3-HMAC-SHA256"
WINDOW = timedelta(minutes=15)
HOST_ID = "postwire"
# Parameters of the protocol, or of Aliyun's resource ownership (RAM), never of an action.
ENVELOPE = frozenset(
    {"Action", "Format", "Version", "Timestamp", "SignatureMethod", "SignatureVersion",
     "SignatureNonce", "AccessKeyId", "Signature", "RegionId", "OwnerId",
     "ResourceOwnerAccount", "ResourceOwnerId"}
)  # fmt: skip


class AliyunError(Exception):
    """An answer in Aliyun's error shape, raised from anywhere in an action."""

    def __init__(self, code: str, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.code, self.message, self.status = code, message, status


def _answer(body: Mapping[str, Any], status: int = 200) -> Response:
    return Response(to_json(body), status_code=status, media_type="application/json")


def ok(data: Mapping[str, Any]) -> Response:
    return _answer({"RequestId": str(uuid.uuid4()).upper(), **data})


def error(code: str, message: str, status: int = 400) -> Response:
    request_id = str(uuid.uuid4()).upper()
    body = {"RequestId": request_id, "HostId": HOST_ID, "Code": code, "Message": message}
    return _answer(body, status)


# Domain errors without a more precise code from the action: (Aliyun code, HTTP status).
DOMAIN_CODES: Mapping[type[errors.PostwireError], tuple[str, int]] = {
    errors.InvalidEmail: ("InvalidToAddress", 400),
    errors.EmptyValue: ("InvalidParameter", 400),
    errors.InvalidValue: ("InvalidParameter", 400),
    errors.MissingMacros: ("InvalidParameter", 400),
    errors.SizeExceeded: ("InvalidParameter", 400),
    errors.NotAvailable: ("InvalidParameter", 400),
    errors.AuthorizationFailed: ("InvalidAccessKeyId.NotFound", 404),
    errors.InvalidPermission: ("Forbidden", 403),
    errors.AccessDenied: ("Forbidden", 403),
    errors.NotFound: ("InvalidParameter", 404),
    errors.AlreadyExists: ("InvalidParameter", 400),
    errors.QuotaExceeded: ("Throttling.User", 400),
    errors.InternalError: ("InternalError", 500),
}


def from_domain(exc: errors.PostwireError) -> AliyunError:
    code, status = DOMAIN_CODES.get(type(exc), ("InternalError", 500))
    return AliyunError(code, exc.description, status)


def action_of(request: Request) -> str | None:
    return request.headers.get("x-acs-action") or request.query_params.get("Action")


def unsupported(request: Request, name: str) -> Response:
    return error(
        "InvalidAction.NotFound",
        f"Specified api is not found, please check your url and method: postwire does not "
        f"answer {name} (docs/migration/aliyun-directmail.md lists the actions it does)",
        404,
    )


DIALECT = Dialect("aliyun", action_of, unsupported)


# -- signatures ---------------------------------------------------------------------------


def pct(value: str) -> str:
    """Aliyun's percent-encoding: RFC 3986 unreserved characters stay, all else is encoded."""
    return quote(value, safe="~")


def encoded_again(canonical: str) -> str:
    """``pct`` of a canonical query: its characters are unreserved ones, '%', '=' and '&'
    only, so three replacements do what ``quote`` does one character at a time (a tenth
    of a send's time, for a body of a few KB)."""
    return canonical.replace("%", "%25").replace("=", "%3D").replace("&", "%26")


def canonical_query(pairs: Iterable[tuple[str, str]]) -> str:
    return "&".join(f"{pct(k)}={pct(v)}" for k, v in sorted(pairs))


def acs3_signature(
    secret: str,
    method: str,
    path: str,
    query: Iterable[tuple[str, str]],
    headers: Mapping[str, Iterable[str]],
    payload_sha256: str,
) -> str:
    """The hex ACS3-HMAC-SHA256 signature; ``headers`` are the signed ones, by lower-case
    name, with every value the request carried."""
    names = sorted(headers)
    lines = "".join(f"{n}:{','.join(sorted(v.strip() for v in headers[n]))}\n" for n in names)
    canonical = "\n".join(
        [method, path or "/", canonical_query(query), lines, ";".join(names), payload_sha256]
    )
    digest = hashlib.sha256(canonical.encode()).hexdigest()
    return hmac.new(secret.encode(), f"{ACS3}\n{digest}".encode(), hashlib.sha256).hexdigest()


def rpc_signature(secret: str, method: str, params: Iterable[tuple[str, str]]) -> str:
    """The base64 RPC HMAC-SHA1 signature over every parameter but ``Signature``."""
    signed = canonical_query((k, v) for k, v in params if k != "Signature")
    text = f"{method}&{pct('/')}&{encoded_again(signed)}"
    digest = hmac.new(f"{secret}&".encode(), text.encode(), hashlib.sha1).digest()
    return base64.b64encode(digest).decode()


@dataclass(frozen=True, slots=True)
class Acs3Authorization:
    access_key_id: str
    signed_headers: tuple[str, ...]
    signature: str


def parse_authorization(value: str) -> Acs3Authorization:
    scheme, _, rest = value.partition(" ")
    if scheme != ACS3:
        raise AliyunError("IncompleteSignature", f"unsupported signature algorithm {scheme!r}")
    fields = dict(part.strip().partition("=")[::2] for part in rest.split(","))
    try:
        return Acs3Authorization(
            fields["Credential"],
            tuple(h for h in fields["SignedHeaders"].lower().split(";") if h),
            fields["Signature"],
        )
    except KeyError as missing:
        raise AliyunError("IncompleteSignature", f"Authorization lacks {missing}") from None


def parse_timestamp(value: str | None, now: datetime) -> datetime:
    if not value:
        raise AliyunError("MissingParameter", "the request has no time (x-acs-date or Timestamp)")
    try:
        when = datetime.strptime(value, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)
    except ValueError:
        raise AliyunError("InvalidTimeStamp.Format", f"bad time stamp {value!r}") from None
    if abs(now - when) > WINDOW:
        raise AliyunError(
            "InvalidTimeStamp.Expired", "Specified time stamp or date value is expired."
        )
    return when


class NonceBook(Protocol):
    async def use(self, access_key_id: str, nonce: str) -> None:
        """Record ``nonce``; ``SignatureNonceUsed`` if it was used within the window."""


def _nonce_used() -> AliyunError:
    return AliyunError("SignatureNonceUsed", "Specified signature nonce was used already.")


class Nonces:
    """The nonces this process saw within the window, by access key; the oldest go first
    past ``cap``."""

    def __init__(self, cap: int = 200_000) -> None:
        self._seen: OrderedDict[tuple[str, str], float] = OrderedDict()
        self._cap = cap

    async def use(self, access_key_id: str, nonce: str) -> None:
        now = time.monotonic()
        while self._seen and (
            len(self._seen) >= self._cap
            or next(iter(self._seen.values())) < now - WINDOW.total_seconds()
        ):
            self._seen.popitem(last=False)
        if (access_key_id, nonce) in self._seen:
            raise _nonce_used()
        self._seen[(access_key_id, nonce)] = now


class StoredNonces:
    """Nonces in ``table`` (``access_key_id, nonce, used_at``; in the schema of the service
    that answers the action), so every process and replica refuses a replay; rows older
    than the window are swept now and then."""

    SWEEP_SECONDS = 60.0

    def __init__(self, pool: asyncpg.Pool, table: str) -> None:
        self._pool = pool
        self._table = table  # a name from our own code, never from a request
        self._swept = 0.0

    async def use(self, access_key_id: str, nonce: str) -> None:
        fresh = await self._pool.fetchval(
            f"INSERT INTO {self._table} (access_key_id, nonce) VALUES ($1, $2) "  # noqa: S608
            "ON CONFLICT DO NOTHING RETURNING true",
            access_key_id,
            nonce,
        )
        if not fresh:
            raise _nonce_used()
        if time.monotonic() - self._swept > self.SWEEP_SECONDS:
            self._swept = time.monotonic()
            await self._pool.execute(
                f"DELETE FROM {self._table} WHERE used_at < now() - $1::interval",  # noqa: S608
                WINDOW * 2,  # either side of our clock
            )


NONCES = Nonces()


# -- requests -----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Call:
    """An authenticated call: who made it, and its action parameters (envelope removed)."""

    principal: Principal
    params: Mapping[str, str]

    def get(self, name: str) -> str | None:
        value = self.params.get(name)
        return value if value not in (None, "") else None

    def required(self, name: str) -> str:
        value = self.get(name)
        if value is None:
            raise AliyunError("MissingParameter", f"{name} is mandatory for this action.")
        return value

    def integer(self, name: str, default: int, low: int, high: int) -> int:
        value = self.get(name)
        if value is None:
            return default
        if not value.isdigit() or not low <= int(value) <= high:
            raise AliyunError("InvalidParameter", f"{name} must be from {low} to {high}")
        return int(value)

    def only(self, accepted: Iterable[str]) -> None:
        """Refuse parameters postwire does not implement, rather than ignore them."""
        extra = sorted(set(self.params) - set(accepted))
        if extra:
            raise AliyunError(
                "InvalidParameter",
                f"postwire does not support {', '.join(extra)} "
                "(docs/migration/aliyun-directmail.md)",
            )


async def authenticate(request: Request, nonces: NonceBook = NONCES) -> Call:
    raw = await request.body()
    body = raw.decode("utf-8", "replace")
    query = parse_qsl(request.url.query, keep_blank_values=True)
    form = parse_qsl(body, keep_blank_values=True)
    params = dict(query) | dict(form)
    version = request.headers.get("x-acs-version") or params.get("Version")
    if version != VERSION:
        raise AliyunError("InvalidVersion", f"Specified parameter Version is not valid: {VERSION}")
    identity: Identity = request.app.state.identity
    now = datetime.now(UTC)
    authorization = request.headers.get("authorization")
    if authorization is not None:
        auth = parse_authorization(authorization)
        key_id, nonce = auth.access_key_id, request.headers.get("x-acs-signature-nonce")
        parse_timestamp(request.headers.get("x-acs-date"), now)
        payload = hashlib.sha256(raw).hexdigest()
        if request.headers.get("x-acs-content-sha256", payload) != payload:
            raise AliyunError("SignatureDoesNotMatch", "x-acs-content-sha256 is not the body's")
        headers = {h: request.headers.getlist(h) for h in auth.signed_headers}
        secret = await _secret(identity, key_id)
        expected = acs3_signature(
            secret.key, request.method, request.url.path, query, headers, payload
        )
        given = auth.signature
    elif "Signature" in params:
        key_id, nonce = params.get("AccessKeyId", ""), params.get("SignatureNonce")
        parse_timestamp(params.get("Timestamp"), now)
        if params.get("SignatureMethod") != "HMAC-SHA1":
            raise AliyunError("InvalidParameter", "SignatureMethod must be HMAC-SHA1")
        secret = await _secret(identity, key_id)
        expected = rpc_signature(secret.key, request.method, [*query, *form])
        given = params["Signature"]
    else:
        raise AliyunError("MissingParameter", "the request is not signed (Authorization header)")
    if not hmac.compare_digest(expected.encode(), given.encode()):
        raise AliyunError(
            "SignatureDoesNotMatch", "Specified signature is not matched with our calculation."
        )
    if not nonce:
        raise AliyunError("MissingParameter", "SignatureNonce is mandatory.")
    await nonces.use(key_id, nonce)
    return Call(secret.principal, {k: v for k, v in params.items() if k not in ENVELOPE})


@dataclass(frozen=True, slots=True)
class _Secret:
    principal: Principal
    key: str


async def _secret(identity: Identity, access_key_id: str) -> _Secret:
    try:
        principal, key = await identity.signing_secret(access_key_id)
    except errors.AuthorizationFailed as exc:
        raise AliyunError(
            "InvalidAccessKeyId.NotFound", f"Specified access key is not found. {exc}", 404
        ) from None
    return _Secret(principal, key)


Run = Callable[[Call], Awaitable[Mapping[str, Any]]]


def action(name: str, run: Run, nonces: NonceBook = NONCES) -> Action:
    """An Aliyun action: authenticate (its nonce recorded in ``nonces``), ``run``, answer
    its data or the error in Aliyun's shape (a domain error translated through
    ``DOMAIN_CODES``)."""

    async def handler(request: Request) -> Response:
        try:
            return ok(await run(await authenticate(request, nonces)))
        except AliyunError as exc:
            return error(exc.code, exc.message, exc.status)
        except errors.PostwireError as exc:
            translated = from_domain(exc)
            return error(translated.code, translated.message, translated.status)

    return Action(DIALECT, name, handler)
