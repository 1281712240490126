"""Push signatures: hex(HMAC-SHA256(key=app_key, msg=str(timestamp) + token))."""

from __future__ import annotations

import hashlib
import hmac
import time

import pytest

from postwire_notifier.signature import new_token, sign, signed, verify

CASES = [
    ("app-key-1", 1_714_000_000, "a" * 48),
    ("k", 0, "token"),
    ("ключ-приложения", 1_700_000_000, "0123456789abcdef0123456789abcdef"),
    ("", 1, ""),
]


def java_php_signature(app_key: str, timestamp: int, token: str) -> str:
    """The seed's Java and PHP samples: HMAC-SHA256 over timestamp.token, hex."""
    message = (str(timestamp) + token).encode("utf-8")
    return hmac.new(app_key.encode("utf-8"), message, hashlib.sha256).hexdigest()


def python_sample_signature(app_key: str, timestamp: int, token: str) -> str:
    """The seed's (wrong) Python sample: a space between timestamp and token."""
    message = f"{timestamp} {token}".encode()
    return hmac.new(app_key.encode("utf-8"), message, hashlib.sha256).hexdigest()


@pytest.mark.parametrize(("app_key", "timestamp", "token"), CASES)
def test_sign_is_the_java_and_php_definition(app_key: str, timestamp: int, token: str) -> None:
    assert sign(app_key, timestamp, token) == java_php_signature(app_key, timestamp, token)


@pytest.mark.parametrize(("app_key", "timestamp", "token"), CASES)
def test_sign_is_not_the_seeds_python_sample(app_key: str, timestamp: int, token: str) -> None:
    assert sign(app_key, timestamp, token) != python_sample_signature(app_key, timestamp, token)


def test_known_vector() -> None:
    # computed by hand with the definition: HMAC-SHA256("key", "1700000000tok")
    expected = hmac.new(b"key", b"1700000000tok", hashlib.sha256).hexdigest()
    assert sign("key", 1_700_000_000, "tok") == expected
    assert len(expected) == 64
    assert expected == expected.lower()


def test_verify_accepts_a_correct_signature() -> None:
    signature = java_php_signature("app-key", 1_714_000_000, "t" * 40)
    assert verify("app-key", 1_714_000_000, "t" * 40, signature) is True


@pytest.mark.parametrize(
    ("app_key", "timestamp", "token"),
    [
        ("other-key", 1_714_000_000, "t" * 40),
        ("app-key", 1_714_000_001, "t" * 40),
        ("app-key", 1_714_000_000, "t" * 39 + "u"),
    ],
)
def test_verify_refuses_a_signature_for_other_inputs(
    app_key: str, timestamp: int, token: str
) -> None:
    signature = java_php_signature("app-key", 1_714_000_000, "t" * 40)
    assert verify(app_key, timestamp, token, signature) is False


@pytest.mark.parametrize("bad", ["", "00", "not-hex", "A" * 64])
def test_verify_refuses_garbage(bad: str) -> None:
    assert verify("app-key", 1_714_000_000, "t" * 40, bad) is False


def test_tokens_are_long_and_new_per_call() -> None:
    tokens = [new_token() for _ in range(1000)]
    assert all(len(token) >= 32 for token in tokens)
    assert len(set(tokens)) == len(tokens)


def test_signed_adds_timestamp_token_and_signature_and_keeps_the_body() -> None:
    body = {"event": "delivered", "env_id": "E1", "from": "news@shop.example", "status": 0}
    result = signed(body, "app-key", "tok" * 11, now=1_714_000_000.9)
    assert result["timestamp"] == 1_714_000_000
    assert result["token"] == "tok" * 11
    assert result["signature"] == java_php_signature("app-key", 1_714_000_000, "tok" * 11)
    assert {k: v for k, v in result.items() if k in body} == body
    assert set(result) == set(body) | {"timestamp", "token", "signature"}
    assert "timestamp" not in body  # the given body is not changed


def test_signed_uses_the_current_time_by_default() -> None:
    before = int(time.time())
    result = signed({}, "k", "t" * 32)
    assert before <= result["timestamp"] <= int(time.time())
    assert verify("k", result["timestamp"], result["token"], result["signature"])
