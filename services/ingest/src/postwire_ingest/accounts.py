"""Accounts (tenants) and their API users; keys are shown once and stored hashed (and
encrypted, for the vendors' signed requests: ``identity.signing_secret``).

An API user's name is its account's business: two accounts may both have a ``reports``
user, so creating one never tells a tenant what another tenant has named its users, and
no tenant can take a name the operator will need (``trigger`` of an account not made
yet). HTTP Basic names the user by its login, ``<account>.<name>`` (e.g.
``acme.reports``), unique because account names are; the API answers it as ``api_user``.
Users made before logins existed keep their old name as login.
"""

from __future__ import annotations

import re
from typing import Any

from postwire_common.errors import InvalidValue
from postwire_common.ids import new_id, new_secret
from postwire_ingest.store import ApiUserRow, IngestStore

ACCOUNT_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,47}")
API_USER_NAME = re.compile(r"[A-Za-z0-9@_-]{6,64}")  # SendCloud: 6-64 of A-Za-z0-9@-_
FIRST_API_USER = "trigger"  # every account's first API user: login "<account>.trigger"


def login(account: str, name: str) -> str:
    """The HTTP Basic user name of API user ``name`` of ``account`` (neither has a dot)."""
    return f"{account}.{name}"


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
    """Create a tenant with a first ``trigger`` API user, login ``<name>.trigger``."""
    check_account_name(name)
    account_id = new_id()
    user = ApiUserRow(FIRST_API_USER, login(name, FIRST_API_USER), "trigger")
    api_key = new_secret()
    await store.create_account(account_id, name, user, api_key)
    return {
        "account": name,
        "account_id": account_id,
        "api_user": user.login,
        "api_key": api_key,
    }


async def create_api_user(
    store: IngestStore, account_id: str, name: str, user_type: str
) -> dict[str, Any]:
    check_api_user_name(name)
    user = ApiUserRow(name, login(await store.account_name(account_id), name), user_type)
    api_key = new_secret()
    await store.create_api_user(account_id, user, api_key)
    return {"api_user": user.login, "name": name, "api_key": api_key, "type": user_type}


async def regenerate_key(store: IngestStore, account_id: str, name: str) -> dict[str, Any]:
    """A new key for the account's user ``name`` (its name or its login)."""
    user = await store.api_user(account_id, name)
    api_key = new_secret()
    await store.set_api_key(account_id, user.name, api_key)
    return {"api_user": user.login, "name": user.name, "api_key": api_key, "type": user.type}
