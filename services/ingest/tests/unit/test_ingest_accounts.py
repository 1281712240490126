"""Account and API user name rules."""

from __future__ import annotations

import pytest

from postwire_common.errors import InvalidValue
from postwire_ingest.accounts import (
    FIRST_API_USER,
    check_account_name,
    check_api_user_name,
    login,
)


@pytest.mark.parametrize("name", ["a", "acme", "Acme-2024_eu", "9lives", "A" * 48])
def test_account_name_accepted(name: str) -> None:
    assert check_account_name(name) == name


@pytest.mark.parametrize(
    "name",
    [
        "",
        "-acme",
        "_acme",
        "A" * 49,
        "acme corp",
        "acme.com",
        "acme@corp",
        "ácme",
        "acme\n",
        "acme\r\n",
        "\nacme",
        "acme/../x",
    ],
)
def test_account_name_refused(name: str) -> None:
    with pytest.raises(InvalidValue):
        check_account_name(name)


@pytest.mark.parametrize(
    "name",
    ["abcdef", "a" * 64, "user@example_com-1", "ABC_def-123@", "------", "@@@@@@", "123456"],
)
def test_api_user_name_accepted(name: str) -> None:
    assert check_api_user_name(name) == name


@pytest.mark.parametrize(
    "name",
    [
        "",
        "abcde",  # 5 characters
        "a" * 65,
        "user.name1",
        "user name",
        "user!23",
        "üsername",
        "user:name",  # would break Basic auth user:key
        "abcdef\n",
        "abcdef\r\n",
    ],
)
def test_api_user_name_refused(name: str) -> None:
    with pytest.raises(InvalidValue):
        check_api_user_name(name)


@pytest.mark.parametrize("account", ["a", "A" * 48, "Acme-2024_eu"])
def test_the_first_api_user_of_any_valid_account_has_a_valid_name(account: str) -> None:
    # create_account names the first API user "trigger", login "<account>.trigger"
    check_account_name(account)
    assert check_api_user_name(FIRST_API_USER) == FIRST_API_USER
    assert login(account, FIRST_API_USER) == f"{account}.trigger"


@pytest.mark.parametrize(
    ("account", "name"), [("a", "abcdef"), ("A" * 48, "x" * 64), ("acme", "ops@acme_1-")]
)
def test_a_login_names_its_account_and_user_unambiguously(account: str, name: str) -> None:
    # Neither account nor API user names contain a dot: the first one splits a login.
    check_account_name(account)
    check_api_user_name(name)
    assert login(account, name).split(".", 1) == [account, name]
