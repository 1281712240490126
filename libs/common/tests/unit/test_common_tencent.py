"""Tencent's TC3-HMAC-SHA256 as we check it, against requests signed by Tencent's own SDK."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pytest
from starlette.requests import Request
from tencentcloud.common import credential
from tencentcloud.common.http.request import RequestInternal
from tencentcloud.common.profile.client_profile import ClientProfile
from tencentcloud.common.profile.http_profile import HttpProfile
from tencentcloud.ses.v20201002 import ses_client

from postwire_common.errors import InvalidValue, NotFound, PostwireError
from postwire_common.vendors.tencent import (
    TencentError,
    check_timestamp,
    code_of,
    parse_authorization,
    signature,
    string_to_sign,
)

SECRET_ID = "acct.sender01"
SECRET_KEY = "kY_3xampleSecretKey-0123456789abcd"


def sdk_request(
    params: dict[str, Any],
    endpoint: str = "127.0.0.1:8080",
    key: str = SECRET_KEY,
    unsigned: bool = False,
) -> tuple[RequestInternal, Request]:
    """A SendEmail request exactly as the SDK builds and signs it, and as Starlette sees it."""
    profile = ClientProfile(httpProfile=HttpProfile(endpoint=endpoint, protocol="http"))
    profile.unsignedPayload = unsigned
    client = ses_client.SesClient(credential.Credential(SECRET_ID, key), "ap-guangzhou", profile)
    built = RequestInternal(endpoint, "POST", "/")
    client._build_req_inter("SendEmail", params, built)
    scope = {
        "type": "http",
        "method": "POST",
        "path": "/",
        "query_string": b"",
        "headers": [(k.lower().encode(), str(v).encode()) for k, v in built.header.items()],
    }
    return built, Request(scope)


def our_signature(built: RequestInternal, request: Request, key: str = SECRET_KEY) -> str:
    signed = parse_authorization(built.header["Authorization"])
    body = built.data.encode() if isinstance(built.data, str) else built.data
    return signature(
        key, signed.date, string_to_sign(request, body, signed, built.header["X-TC-Timestamp"])
    )


def test_the_sdks_signature_is_the_one_we_compute() -> None:
    built, request = sdk_request({"FromEmailAddress": "a@example.org", "Subject": "Zoë"})
    signed = parse_authorization(built.header["Authorization"])
    assert signed.secret_id == SECRET_ID
    assert signed.headers == ("content-type", "host")
    assert our_signature(built, request) == signed.signature


def test_another_key_or_a_changed_body_does_not_verify() -> None:
    built, request = sdk_request({"Subject": "hello"})
    claimed = parse_authorization(built.header["Authorization"]).signature
    assert our_signature(built, request, key=SECRET_KEY + "x") != claimed
    built.data = json.dumps({"Subject": "hellO"})
    assert our_signature(built, request) != claimed


def test_an_unsigned_payload_is_signed_without_its_body() -> None:
    built, request = sdk_request({"Subject": "hello"}, unsigned=True)
    claimed = parse_authorization(built.header["Authorization"]).signature
    assert our_signature(built, request) == claimed
    built.data = json.dumps({"Subject": "other"})  # the client chose not to sign it
    assert our_signature(built, request) == claimed


def test_the_host_is_signed() -> None:
    built, _ = sdk_request({"Subject": "hello"}, endpoint="mail.example.org:8443")
    _, elsewhere = sdk_request({"Subject": "hello"}, endpoint="127.0.0.1:1")
    claimed = parse_authorization(built.header["Authorization"]).signature
    assert our_signature(built, elsewhere) != claimed


@pytest.mark.parametrize(
    ("header", "code"),
    [
        ("", "AuthFailure.InvalidAuthorization"),
        ("Basic YTpi", "AuthFailure.InvalidAuthorization"),
        (
            "TC3-HMAC-SHA256 Credential=a.b/2026-12-01/cvm/tc3_request, "
            "SignedHeaders=content-type;host, Signature=" + "0" * 64,
            "AuthFailure.InvalidAuthorization",
        ),
        (
            "TC3-HMAC-SHA256 Credential=a.b/2026-12-01/ses/tc3_request, "
            "SignedHeaders=content-type, Signature=" + "0" * 64,
            "AuthFailure.InvalidAuthorization",
        ),
    ],
)
def test_malformed_authorization_is_refused(header: str, code: str) -> None:
    with pytest.raises(TencentError) as caught:
        parse_authorization(header)
    assert caught.value.code == code


def test_timestamps_more_than_five_minutes_off_have_expired() -> None:
    now = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
    moment = int(now.timestamp())
    assert check_timestamp(str(moment - 299), "2026-12-01", now) == str(moment - 299)
    for off in (-301, 301):
        with pytest.raises(TencentError) as caught:
            check_timestamp(str(moment + off), "2026-12-01", now)
        assert caught.value.code == "AuthFailure.SignatureExpire"
    with pytest.raises(TencentError) as caught:
        check_timestamp(str(moment), "2026-11-30", now)
    assert caught.value.code == "AuthFailure.SignatureFailure"
    with pytest.raises(TencentError) as caught:
        check_timestamp(None, "2026-12-01", now)
    assert caught.value.code == "MissingParameter"


def test_our_errors_take_the_actions_code_first_then_the_common_one() -> None:
    assert code_of(NotFound("x"), {}) == "ResourceNotFound"
    specific: dict[type[PostwireError], str] = {NotFound: "InvalidParameterValue.TemplateNotExist"}
    assert code_of(NotFound("x"), specific) == "InvalidParameterValue.TemplateNotExist"
    assert code_of(InvalidValue("x"), specific) == "InvalidParameterValue"
