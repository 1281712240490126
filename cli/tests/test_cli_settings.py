"""``postwire settings`` shows where the database and broker are, never their passwords."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

DB_PASSWORD = "db-Pa55-userinfo"
DB_QUERY_PASSWORD = "db-Pa55-query"
BROKER_PASSWORD = "mq-Pa55-userinfo"
ADMIN_TOKEN = "admin-token-0123456789abcdef"
SECRET_KEY = "pD1d0f8Xb3k1Xo8nq5r3x2Q9c5Jg7nY3uKx0n2Q4m1E="

SECRETS = (DB_PASSWORD, DB_QUERY_PASSWORD, BROKER_PASSWORD, ADMIN_TOKEN, SECRET_KEY)


def run_settings(*args: str) -> str:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("POSTWIRE_")}
    env = {
        **clean,
        "POSTWIRE_DATABASE_URL": (
            f"postgresql://postwire:{DB_PASSWORD}@db.internal:5432/postwire"
            f"?sslmode=require&password={DB_QUERY_PASSWORD}"
        ),
        "POSTWIRE_BROKER_URL": f"amqp://postwire:{BROKER_PASSWORD}@mq.internal:5672/prod",
        "POSTWIRE_ADMIN_TOKEN": ADMIN_TOKEN,
        "POSTWIRE_SECRET_KEYS": SECRET_KEY,
    }
    done = subprocess.run(  # noqa: S603 - our own command
        [sys.executable, "-m", "postwire", "settings", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout + done.stderr


@pytest.mark.parametrize("args", [(), ("--json",)])
def test_settings_never_print_passwords_tokens_or_keys(args: tuple[str, ...]) -> None:
    output = run_settings(*args)
    for secret in SECRETS:
        assert secret not in output
    # ... but say where the database and broker are.
    assert "db.internal:5432/postwire" in output
    assert "mq.internal:5672/prod" in output


def test_settings_json_shows_urls_without_their_passwords() -> None:
    shown = json.loads(run_settings("--json"))
    assert shown["POSTWIRE_DATABASE_URL"] == (
        "postgresql://postwire:***@db.internal:5432/postwire?sslmode=require&password=***"
    )
    assert shown["POSTWIRE_BROKER_URL"] == "amqp://postwire:***@mq.internal:5672/prod"
    assert shown["POSTWIRE_ADMIN_TOKEN"] == "(set, hidden)"
    assert shown["POSTWIRE_SECRET_KEYS"] == "(set, hidden)"
