"""``postwire admin create-account`` and ``new-key``: logins are ``<account>.<name>``, so a
name another tenant took first cannot stop the operator creating an account."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from postwire_common import db
from postwire_common.crypto import Keyring, generate_key
from postwire_common.identity import Identity
from postwire_ingest import accounts
from postwire_ingest.store import IngestStore
from postwire_testkit.infra import migrated_database, unique_name

pytestmark = pytest.mark.integration


def admin(database_url: str, *args: str, cwd: Path) -> dict[str, str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("POSTWIRE_")}
    done = subprocess.run(  # noqa: S603 - our own command
        [sys.executable, "-m", "postwire", "admin", *args],
        env={**clean, "POSTWIRE_DATABASE_URL": database_url},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        cwd=cwd,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return dict(line.split(None, 1) for line in done.stdout.splitlines())


async def test_a_squatted_name_does_not_stop_create_account(tmp_path: Path) -> None:
    async with migrated_database() as url:
        pool = await db.create_pool(url, size=2)
        try:
            store = IngestStore(pool, Keyring([generate_key()]))
            squatter = await accounts.create_account(store, unique_name("acme"))
            globex = unique_name("globex")
            for name in (f"{globex}_trigger", f"{globex}_trig"):
                await accounts.create_api_user(store, squatter["account_id"], name, "trigger")

            made = admin(url, "create-account", globex, cwd=tmp_path)
            assert made["api_user"] == f"{globex}.trigger"
            renewed = admin(url, "new-key", made["api_user"], cwd=tmp_path)
            assert renewed["api_user"] == made["api_user"]
            assert renewed["api_key"] != made["api_key"]
            principal = await Identity(pool).authenticate(renewed["api_user"], renewed["api_key"])
            assert principal.tenant_name == globex
        finally:
            await pool.close()
