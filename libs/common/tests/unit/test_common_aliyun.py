"""Aliyun's signatures, checked against the SDK's own signer (alibabacloud_tea_openapi)."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace

import pytest
from alibabacloud_tea_openapi.utils import Utils
from hypothesis import given
from hypothesis import strategies as st

from postwire_common.vendors.aliyun import (
    AliyunError,
    Nonces,
    acs3_signature,
    canonical_query,
    encoded_again,
    parse_authorization,
    parse_timestamp,
    pct,
    rpc_signature,
)

SECRET = "k3y_With-URL~safe"
BODY = "AccountName=news%40shop.example&Subject=Hello%20%E4%BD%A0%E5%A5%BD&ToAddress=a%40x.org"


def test_acs3_matches_the_sdk() -> None:
    payload = hashlib.sha256(BODY.encode()).hexdigest()
    headers = {
        "host": "127.0.0.1:8080",
        "x-acs-action": "SingleSendMail",
        "x-acs-version": "2015-11-23",
        "x-acs-date": "2026-12-01T10:00:00Z",
        "x-acs-signature-nonce": "abc",
        "content-type": "application/x-www-form-urlencoded",
        "x-acs-content-sha256": payload,
    }
    query = {"OwnerId": "1", "Tag": "a b/ü"}
    request = SimpleNamespace(pathname="/", method="POST", query=query, headers=headers)
    sdk = Utils.get_authorization(request, "ACS3-HMAC-SHA256", payload, "acct.user", SECRET)
    auth = parse_authorization(sdk)
    assert auth.access_key_id == "acct.user"
    assert auth.signed_headers == tuple(sorted(headers))
    ours = acs3_signature(
        SECRET, "POST", "/", query.items(), {h: [headers[h]] for h in headers}, payload
    )
    assert ours == auth.signature
    assert acs3_signature("other", "POST", "/", query.items(), {}, payload) != auth.signature


def test_rpc_matches_the_sdk() -> None:
    params = {
        "Action": "SingleSendMail",
        "Format": "json",
        "Version": "2015-11-23",
        "Timestamp": "2026-12-01T10:00:00Z",
        "SignatureNonce": "n1",
        "SignatureMethod": "HMAC-SHA1",
        "SignatureVersion": "1.0",
        "AccessKeyId": "acct.user",
        "Subject": "Hello 你好 *~'",
    }
    sdk = Utils.get_rpcsignature(params, "POST", SECRET)
    assert rpc_signature(SECRET, "POST", [*params.items(), ("Signature", sdk)]) == sdk


def test_a_request_outside_the_window_is_refused() -> None:
    now = datetime(2026, 12, 1, 10, 0, tzinfo=UTC)
    assert parse_timestamp("2026-12-01T10:14:00Z", now) == now + timedelta(minutes=14)
    with pytest.raises(AliyunError) as expired:
        parse_timestamp("2026-12-01T09:44:00Z", now)
    assert expired.value.code == "InvalidTimeStamp.Expired"
    with pytest.raises(AliyunError) as malformed:
        parse_timestamp("yesterday", now)
    assert malformed.value.code == "InvalidTimeStamp.Format"


async def test_a_nonce_is_used_once_per_access_key() -> None:
    nonces = Nonces(cap=2)
    await nonces.use("a", "1")
    await nonces.use("b", "1")
    with pytest.raises(AliyunError) as used:
        await nonces.use("b", "1")
    assert used.value.code == "SignatureNonceUsed"
    await nonces.use("c", "1")  # past the cap the oldest is forgotten
    await nonces.use("a", "1")


def test_an_authorization_without_a_signature_is_incomplete() -> None:
    with pytest.raises(AliyunError) as incomplete:
        parse_authorization("ACS3-HMAC-SHA256 Credential=a,SignedHeaders=host")
    assert incomplete.value.code == "IncompleteSignature"


@given(st.lists(st.tuples(st.text(), st.text())))
def test_a_canonical_query_is_encoded_again_as_quote_would(pairs: list[tuple[str, str]]) -> None:
    canonical = canonical_query(pairs)
    assert encoded_again(canonical) == pct(canonical)
