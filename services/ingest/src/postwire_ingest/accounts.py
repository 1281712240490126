"""Accounts (tenants) and their API users; keys are shown once and stored hashed."""

from __future__ import annotations

import re
from typing import Any

from postwire_common.errors import InvalidValue
from postwire_common.identity import hash_key
from postwire_common.ids import new_id, new_secret
from postwire_ingest.store import IngestStore

ACCOUNT_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,47}")
API_USER_NAME = re.compile(r"[A-Za-z0-9@_-]{6,64}")  # SendCloud: 6-64 of A-Za-z0-9@-_


def check_account_name(name: str) -> str:
    if not ACCOUNT_NAME.fullmatch(name):
        raise InvalidValue(
            "an account name has 1-48 letters, digits, '-' or '_' and starts with a letter or digit"
        )
    return name


def check_api_user_name(name: str) -> str:
    if not API_USER_NAME.fullmatch(name):
        raise InvalidValue("an API user name has 6-64 characters of A-Z a-z 0-9 @ - _")
    return name


async def create_account(store: IngestStore, name: str) -> dict[str, Any]:
    """Create a tenant with a first ``trigger`` API user named ``<name>_trigger``."""
    check_account_name(name)
    account_id = new_id()
    api_user = check_api_user_name(f"{name}_trigger")
    api_key = new_secret()
    await store.create_account(account_id, name, api_user, "trigger", hash_key(api_key))
    return {"account": name, "account_id": account_id, "api_user": api_user, "api_key": api_key}


async def create_api_user(
    store: IngestStore, account_id: str, name: str, user_type: str
) -> dict[str, Any]:
    check_api_user_name(name)
    api_key = new_secret()
    await store.create_api_user(account_id, name, user_type, hash_key(api_key))
    return {"api_user": name, "api_key": api_key, "type": user_type}


async def regenerate_key(store: IngestStore, account_id: str, name: str) -> dict[str, Any]:
    user_type = await store.api_user_type(account_id, name)
    api_key = new_secret()
    await store.set_api_key(account_id, name, hash_key(api_key))
    return {"api_user": name, "api_key": api_key, "type": user_type}
