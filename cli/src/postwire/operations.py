"""What the CLI commands do, apart from argument handling."""

from __future__ import annotations

import asyncio
import json
import os
from collections.abc import Iterator, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
from pydantic import SecretStr

from postwire.registry import MIGRATIONS
from postwire_common import db
from postwire_common.config import Settings, redact
from postwire_common.crypto import keyring
from postwire_common.migrations import upgrade
from postwire_delivery.store import DeliveryStore
from postwire_events import stats_store
from postwire_ingest import accounts
from postwire_ingest.store import IngestStore
from postwire_notifier.store import NotifierStore

DEMO_ACCOUNT = "demo"
DEMO_DOMAIN = "demo.postwire.example"
DEMO_SENDER = f"hello@{DEMO_DOMAIN}"


def migrate(settings: Settings, only: Sequence[str] = ()) -> Iterator[str]:
    database_url = settings.database_url.get_secret_value()
    if asyncio.run(db.ensure_database(database_url)):
        yield f"created database {db.database_name(database_url)}"
    for migration in MIGRATIONS:
        if only and migration.service not in only:
            continue
        upgrade(database_url, migration)
        yield f"{migration.service}: schema up to date"


def describe_settings(settings: Settings) -> list[tuple[str, str, str]]:
    rows = []
    for name, field in Settings.model_fields.items():
        value = getattr(settings, name)
        if isinstance(value, SecretStr):
            secret = value.get_secret_value()
            # URLs show where they point, without password; tokens and keys not at all.
            shown = redact(secret) if "://" in secret else "(set, hidden)"
        elif value is None:
            shown = "(unset)"
        elif isinstance(value, list):
            shown = ",".join(f"{v:g}s" if isinstance(v, float) else str(v) for v in value)
        elif isinstance(value, str) and "://" in value:
            shown = redact(value)
        else:
            shown = str(value)
        rows.append((f"POSTWIRE_{name.upper()}", shown, field.description or ""))
    return rows


async def _with_store(settings: Settings) -> IngestStore:
    pool = await db.create_pool(settings.database_url.get_secret_value(), size=1)
    return IngestStore(pool, keyring(settings))  # API keys are stored sealed too


async def create_account(settings: Settings, name: str) -> dict[str, Any]:
    store = await _with_store(settings)
    try:
        return await accounts.create_account(store, name)
    finally:
        await store.pool.close()


async def new_key(settings: Settings, api_user: str) -> dict[str, Any]:
    """A new key for the API user whose login (``<account>.<name>``) is ``api_user``."""
    store = await _with_store(settings)
    try:
        row = await store.pool.fetchrow(
            "SELECT account_id, name FROM ingest.api_users WHERE login = $1", api_user
        )
        if row is None:
            from postwire_common.errors import NotFound

            raise NotFound(f"no API user {api_user!r} (name it as <account>.<name>)")
        return await accounts.regenerate_key(store, row["account_id"], row["name"])
    finally:
        await store.pool.close()


async def rotate_secrets(settings: Settings) -> dict[str, Any]:
    """Re-encrypt every stored secret with the first key of POSTWIRE_SECRET_KEYS (and
    encrypt those still stored in plaintext)."""
    keys = keyring(settings)
    pool = await db.create_pool(settings.database_url.get_secret_value(), size=1)
    try:
        ingest = IngestStore(pool, keys)
        dkim = await ingest.rewrite_dkim_keys(rotate=True)
        api_keys = await ingest.rewrite_api_keys(rotate=True)
        # delivery's copies of the keys, as they came with the mail they sign
        dkim += await DeliveryStore(pool).rewrite_signing_keys(keys, rotate=True)
        app_keys = await NotifierStore(pool, keys).rewrite_app_keys(rotate=True)
    finally:
        await pool.close()
    return {"dkim_private_keys": dkim, "webhook_app_keys": app_keys, "api_keys": api_keys}


async def recount_stats(
    settings: Settings, since: datetime, until: datetime, account: str | None
) -> dict[str, Any]:
    """Rebuild statistics counters from the event log (events' ``stats_store``)."""
    pool = await db.create_pool(settings.database_url.get_secret_value(), size=1)
    try:
        return await stats_store.recount_all(pool, since, until, account)
    finally:
        await pool.close()


def seed_demo(settings: Settings, api: str, state_file: str) -> dict[str, Any]:
    """Demo account, verified domain and sender, through the HTTP API (idempotent)."""
    if settings.admin_token is None:
        raise SystemExit("postwire demo needs POSTWIRE_ADMIN_TOKEN (the admin API is off)")
    admin = {"Authorization": f"Bearer {settings.admin_token.get_secret_value()}"}
    path = Path(state_file)
    with httpx.Client(base_url=api, timeout=30) as client:
        creds = json.loads(path.read_text()) if path.exists() else None
        if creds and client.get("/v1/senders", auth=_auth(creds)).status_code != 200:
            creds = None  # stale (database was reset)
        if creds is None:
            answer = client.post("/v1/admin/accounts", json={"name": DEMO_ACCOUNT}, headers=admin)
            if answer.json()["Code"] == "already_exists":
                creds = asyncio.run(_demo_key(settings))
            else:
                _expect(answer, 201)
                creds = answer.json()["Result"]
            creds = {"api_user": creds["api_user"], "api_key": creds["api_key"]}
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(json.dumps(creds))
            os.chmod(path, 0o600)
        auth = _auth(creds)
        _expect(client.post("/v1/domains", json={"name": DEMO_DOMAIN}, auth=auth), 201, 409)
        _expect(client.post(f"/v1/admin/domains/{DEMO_DOMAIN}/verified", headers=admin), 200)
        _expect(
            client.post(
                "/v1/senders", json={"address": DEMO_SENDER, "alias": "postwire demo"}, auth=auth
            ),
            201,
            409,
        )
    return {**creds, "sender": DEMO_SENDER, "domain": f"{DEMO_DOMAIN} (verified)"}


async def _demo_key(settings: Settings) -> dict[str, Any]:
    from postwire_common.errors import NotFound

    try:
        return await new_key(settings, accounts.login(DEMO_ACCOUNT, accounts.FIRST_API_USER))
    except NotFound:  # a demo account made before logins had the account in them
        return await new_key(settings, f"{DEMO_ACCOUNT}_trigger")


def _auth(creds: dict[str, str]) -> httpx.BasicAuth:
    return httpx.BasicAuth(creds["api_user"], creds["api_key"])


def _expect(answer: httpx.Response, *codes: int) -> None:
    if answer.status_code not in codes:
        raise SystemExit(
            f"postwire demo: {answer.request.method} {answer.request.url.path} answered "
            f"{answer.status_code}: {answer.text[:300]}"
        )
