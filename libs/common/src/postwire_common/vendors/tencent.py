"""Tencent Cloud API 3.0 as the SES SDKs (``tencentcloud-sdk-python-ses``, 2020-10-02) speak it.

::

    POST /  X-TC-Action: SendEmail  X-TC-Version: 2020-10-02  X-TC-Timestamp: 1700000000
            Authorization: TC3-HMAC-SHA256 Credential=<SecretId>/<date>/ses/tc3_request,
                           SignedHeaders=content-type;host, Signature=<hex>
            {"FromEmailAddress": ..., ...}                         (JSON body)
        ──verify──▶ (Principal, params) ──action──▶ {"Response": {..., "RequestId"}}
                                         error ──▶ {"Response": {"Error": {Code, Message},
                                                                 "RequestId"}}

SecretId is an API user's login and SecretKey its API key (``Identity.signing_secret``).
The signature (TC3-HMAC-SHA256, the SDK's ``_get_tc3_signature``)::

    canonical = "POST\\n/\\n<query>\\n" + "<name>:<value>\\n" per signed header + "\\n"
                + "<signed headers>\\n" + sha256hex(body)   (or of "UNSIGNED-PAYLOAD")
    string    = "TC3-HMAC-SHA256\\n<timestamp>\\n<date>/ses/tc3_request\\n" + sha256hex(canonical)
    key       = HMAC(HMAC(HMAC("TC3" + SecretKey, date), "ses"), "tc3_request")

Every answer is HTTP 200 with ``Content-Type: application/json`` exactly: the SDK raises
``TencentCloudSDKException(code)`` from ``Response.Error`` only under that type (a
charset suffix would hide the error from it), and any other status as a network error.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import re
import uuid
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, TypeVar

from fastapi import Request, Response
from pydantic import BaseModel, ConfigDict, ValidationError

from postwire_common import errors
from postwire_common.http.actions import Action, Dialect
from postwire_common.http.body import read_body
from postwire_common.http.limits import DEFAULT_LIMIT
from postwire_common.identity import Principal

__all__ = [
    "DIALECT",
    "VERSION",
    "Call",
    "Params",
    "TencentError",
    "action",
    "error",
    "ok",
    "signature",
    "verify",
]

log = logging.getLogger("postwire.vendors.tencent")

VERSION = "2020-10-02"
SERVICE = "ses"
ALGORITHM = "TC3-HMAC-SHA256"
MAX_SKEW_SECONDS = 300  # Tencent refuses a timestamp more than 5 minutes off

# Every action of SES 2020-10-02 (the SDK's SesClient): one we do not answer is
# UnsupportedOperation; a name outside the API is InvalidAction, as Tencent answers it.
SES_ACTIONS = frozenset(
    (
        "BatchSendEmail", "CreateAddressUnsubscribeConfig", "CreateCustomBlacklist",
        "CreateEmailAddress", "CreateEmailIdentity", "CreateEmailTemplate", "CreateReceiver",
        "CreateReceiverDetail", "CreateReceiverDetailWithData", "DeleteAddressUnsubscribeConfig",
        "DeleteBlackList", "DeleteCustomBlackList", "DeleteEmailAddress", "DeleteEmailIdentity",
        "DeleteEmailTemplate", "DeleteReceiver", "GetAbuseReport", "GetEmailIdentity",
        "GetEmailTemplate", "GetSendEmailStatus", "GetStatisticsReport",
        "ListAddressUnsubscribeConfig", "ListBlackEmailAddress", "ListCustomBlacklist",
        "ListEmailAddress", "ListEmailIdentities", "ListEmailTemplates", "ListReceiverDetails",
        "ListReceivers", "ListSendTasks", "SendEmail", "UpdateAddressUnsubscribeConfig",
        "UpdateCustomBlackList", "UpdateEmailIdentity", "UpdateEmailSmtpPassWord",
        "UpdateEmailTemplate",
    )
)  # fmt: skip

# Our errors as Tencent's common codes; actions name the specific ones where they know
# more (e.g. a missing template is InvalidParameterValue.TemplateNotExist).
CODES: Mapping[type[errors.PostwireError], str] = {
    errors.InvalidEmail: "InvalidParameterValue.IllegalEmailAddress",
    errors.EmptyValue: "MissingParameter",
    errors.InvalidValue: "InvalidParameterValue",
    errors.MissingMacros: "InvalidParameterValue.TemplateNotMatchData",
    errors.SizeExceeded: "LimitExceeded",
    errors.NotAvailable: "FailedOperation",
    errors.AuthorizationFailed: "AuthFailure.SecretIdNotFound",
    errors.InvalidPermission: "OperationDenied",
    errors.AccessDenied: "OperationDenied",
    errors.NotFound: "ResourceNotFound",
    errors.AlreadyExists: "InvalidParameterValue.RepeatCreation",
    errors.QuotaExceeded: "RequestLimitExceeded",
    errors.InternalError: "InternalError",
}


class TencentError(Exception):
    """An answer in Tencent's error shape, raised by an action or by :func:`verify`."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message


def _answer(body: Mapping[str, Any]) -> Response:
    payload = {"Response": {**body, "RequestId": str(uuid.uuid4())}}
    return Response(json.dumps(payload, ensure_ascii=False), media_type="application/json")


def ok(data: Mapping[str, Any]) -> Response:
    return _answer(data)


def error(code: str, message: str) -> Response:
    return _answer({"Error": {"Code": code, "Message": message}})


def code_of(exc: errors.PostwireError, codes: Mapping[type[errors.PostwireError], str]) -> str:
    """The Tencent code of one of our errors: the action's own, else the common one."""
    for kind in type(exc).__mro__:
        if kind in codes:
            return codes[kind]
        if kind in CODES:
            return CODES[kind]
    return "InternalError"


# -- which action, and one we do not have ----------------------------------------------------


def _action_of(request: Request) -> str | None:
    return request.headers.get("x-tc-action")


def _unsupported(request: Request, name: str) -> Response:
    if name in SES_ACTIONS:
        return error("UnsupportedOperation", f"postwire does not implement the action {name}")
    return error("InvalidAction", f"The action `{name}` does not exist.")


DIALECT = Dialect("tencent", _action_of, _unsupported)


# -- the signature ----------------------------------------------------------------------------


def signature(secret_key: str, date: str, string_to_sign: str) -> str:
    """TC3's signature of ``string_to_sign`` with the key derived for ``date`` and SES."""

    def sign(key: bytes, msg: str) -> bytes:
        return hmac.new(key, msg.encode("utf-8"), hashlib.sha256).digest()

    signing = sign(sign(sign(("TC3" + secret_key).encode("utf-8"), date), SERVICE), "tc3_request")
    return hmac.new(signing, string_to_sign.encode("utf-8"), hashlib.sha256).hexdigest()


_AUTHORIZATION = re.compile(
    r"TC3-HMAC-SHA256 Credential=(?P<id>[^/,\s]+)/(?P<date>\d{4}-\d{2}-\d{2})/(?P<service>[^/,\s]+)"
    r"/tc3_request, ?SignedHeaders=(?P<headers>[a-z0-9;-]+), ?Signature=(?P<signature>[0-9a-f]{64})"
)


@dataclass(frozen=True, slots=True)
class Signed:
    """What the Authorization header claims."""

    secret_id: str
    date: str
    headers: tuple[str, ...]
    signature: str


def parse_authorization(value: str) -> Signed:
    match = _AUTHORIZATION.fullmatch(value.strip())
    if match is None:
        raise TencentError(
            "AuthFailure.InvalidAuthorization",
            "Authorization must be TC3-HMAC-SHA256 Credential=SecretId/date/ses/tc3_request, "
            "SignedHeaders=..., Signature=...",
        )
    if match["service"] != SERVICE:
        raise TencentError("AuthFailure.InvalidAuthorization", "the credential scope is not ses")
    headers = tuple(match["headers"].split(";"))
    if not {"content-type", "host"} <= set(headers):
        raise TencentError(
            "AuthFailure.InvalidAuthorization", "SignedHeaders must include content-type and host"
        )
    return Signed(match["id"], match["date"], headers, match["signature"])


def string_to_sign(request: Request, body: bytes, signed: Signed, timestamp: str) -> str:
    canonical_headers = "".join(
        f"{name}:{request.headers.get(name, '').strip()}\n" for name in signed.headers
    )
    unsigned = request.headers.get("x-tc-content-sha256") == "UNSIGNED-PAYLOAD"
    payload = b"UNSIGNED-PAYLOAD" if unsigned else body
    canonical = "\n".join(
        (
            request.method,
            request.url.path,
            request.url.query,
            canonical_headers,
            ";".join(signed.headers),
            hashlib.sha256(payload).hexdigest(),
        )
    )
    digest = hashlib.sha256(canonical.encode("utf-8")).hexdigest()
    return f"{ALGORITHM}\n{timestamp}\n{signed.date}/{SERVICE}/tc3_request\n{digest}"


def check_timestamp(value: str | None, date: str, now: datetime) -> str:
    if value is None or not value.isdigit():
        raise TencentError("MissingParameter", "X-TC-Timestamp is required (Unix seconds)")
    moment = int(value)
    if abs(now.timestamp() - moment) > MAX_SKEW_SECONDS:
        raise TencentError(
            "AuthFailure.SignatureExpire",
            "the signature expired: X-TC-Timestamp is more than 5 minutes from the server time",
        )
    if datetime.fromtimestamp(moment, UTC).strftime("%Y-%m-%d") != date:
        raise TencentError(
            "AuthFailure.SignatureFailure", "the credential date is not the timestamp's UTC date"
        )
    return value


async def verify(request: Request, body: bytes, now: datetime | None = None) -> Principal:
    """The API user who signed ``request`` (TC3-HMAC-SHA256), or a :class:`TencentError`."""
    signed = parse_authorization(request.headers.get("authorization", ""))
    timestamp = check_timestamp(
        request.headers.get("x-tc-timestamp"), signed.date, now or datetime.now(UTC)
    )
    version = request.headers.get("x-tc-version")
    if version != VERSION:
        raise TencentError(
            "NoSuchVersion", f"postwire answers SES version {VERSION}, not {version}"
        )
    if request.headers.get("x-tc-token"):
        raise TencentError(
            "AuthFailure.TokenFailure", "temporary credentials (X-TC-Token) are not supported"
        )
    try:
        principal, secret_key = await request.app.state.identity.signing_secret(signed.secret_id)
    except errors.AuthorizationFailed as exc:
        raise TencentError("AuthFailure.SecretIdNotFound", exc.description) from None
    expected = signature(secret_key, signed.date, string_to_sign(request, body, signed, timestamp))
    if not hmac.compare_digest(expected, signed.signature):
        raise TencentError("AuthFailure.SignatureFailure", "the request signature is wrong")
    assert isinstance(principal, Principal)
    return principal


# -- parameters -------------------------------------------------------------------------------


class Params(BaseModel):
    """An action's JSON parameters: unknown ones refused, as Tencent does (UnknownParameter)."""

    model_config = ConfigDict(extra="forbid", frozen=True)


P = TypeVar("P", bound=Params)


def _parameter_error(exc: ValidationError) -> TencentError:
    first = exc.errors(include_url=False)[0]
    where = ".".join(str(part) for part in first["loc"]) or "the body"
    if first["type"] == "missing":
        return TencentError(
            "MissingParameter", f"The request is missing a required parameter `{where}`."
        )
    if first["type"] == "extra_forbidden":
        return TencentError("UnknownParameter", f"The parameter `{where}` is not recognized.")
    return TencentError("InvalidParameter", f"The parameter `{where}`: {first['msg']}.")


@dataclass(frozen=True, slots=True)
class Call:
    principal: Principal
    body: bytes

    def params(self, model: type[P]) -> P:
        try:
            return model.model_validate_json(self.body or b"{}")
        except ValidationError as exc:
            raise _parameter_error(exc) from None


Run = Callable[[Call], Awaitable[Mapping[str, Any]]]


def action(
    name: str,
    run: Run,
    *,
    codes: Mapping[type[errors.PostwireError], str] | None = None,
    body_bytes: int = DEFAULT_LIMIT,
) -> Action:
    """``run`` as the SES action ``name``: the signature checked first, and every error
    (ours, translated through ``codes`` then :data:`CODES`) answered in Tencent's shape."""
    own = codes or {}

    async def handler(request: Request) -> Response:
        try:
            body = await read_body(request, body_bytes)
            principal = await verify(request, body)
            return ok(await run(Call(principal, body)))
        except TencentError as exc:
            return error(exc.code, exc.message)
        except errors.PostwireError as exc:
            return error(code_of(exc, own), exc.description)
        except Exception:  # the SDK reads only a 200 JSON answer; anything else is noise
            log.exception("tencent action %s failed", name)
            return error("InternalError", "an internal error occurred; retry later")

    return Action(DIALECT, name, handler)
