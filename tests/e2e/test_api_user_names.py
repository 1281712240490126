"""API user names belong to their account (security review, issue 6): a tenant cannot
learn that another tenant's API user name exists, nor take a name the operator needs."""

from __future__ import annotations

import httpx
import pytest

from postwire_testkit.api import Tenant, envelope
from postwire_testkit.infra import unique_name
from postwire_testkit.platform import PlatformProcess

from .conftest import ADMIN_TOKEN

ADMIN = {"Authorization": f"Bearer {ADMIN_TOKEN}"}


async def new_user(tenant: Tenant, name: str) -> httpx.Response:
    return await tenant.client("ingest").post("/v1/api-users", json={"name": name, "type": "batch"})


async def test_another_tenants_user_name_is_neither_revealed_nor_taken(
    tenant: Tenant, other_tenant: Tenant
) -> None:
    name = unique_name("reports")
    mine = await new_user(tenant, name)
    assert mine.status_code == 201, mine.text
    # The same name in another account is simply that account's own user.
    theirs = await new_user(other_tenant, name)
    assert theirs.status_code == 201, theirs.text
    assert envelope(mine)["Result"]["api_user"] == f"{tenant.name}.{name}"
    assert envelope(theirs)["Result"]["api_user"] == f"{other_tenant.name}.{name}"
    # Within one account a name is taken once, and that tells only about the account.
    again = await new_user(tenant, name)
    assert (again.status_code, envelope(again)["Code"]) == (409, "already_exists")

    # Each login works with its own key only.
    for created in (mine, theirs):
        result = envelope(created)["Result"]
        async with httpx.AsyncClient(base_url=str(tenant.urls.ingest)) as client:
            auth = httpx.BasicAuth(result["api_user"], result["api_key"])
            assert (await client.get("/v1/api-users", auth=auth)).status_code == 200
    async with httpx.AsyncClient(base_url=str(tenant.urls.ingest)) as client:
        crossed = httpx.BasicAuth(
            envelope(mine)["Result"]["api_user"], envelope(theirs)["Result"]["api_key"]
        )
        assert (await client.get("/v1/api-users", auth=crossed)).status_code == 401


async def test_another_tenants_users_answer_not_found(tenant: Tenant, other_tenant: Tenant) -> None:
    their_name = unique_name("theirs")
    their_user = envelope(await new_user(other_tenant, their_name))["Result"]
    client = tenant.client("ingest")
    paths = (other_tenant.api_user, their_user["api_user"], their_name, "no-such-user")
    for path in paths:
        for answer in (
            await client.post(f"/v1/api-users/{path}/key"),
            await client.delete(f"/v1/api-users/{path}"),
        ):
            assert answer.status_code == 404, (path, answer.text)
            assert envelope(answer)["Code"] == "not_found"
    listed = envelope(await client.get("/v1/api-users"))["Result"]
    assert {u["api_user"] for u in listed} == {tenant.api_user}
    # Their users and credentials are untouched.
    listed = envelope(await other_tenant.client("ingest").get("/v1/api-users"))["Result"]
    assert {u["api_user"] for u in listed} == {other_tenant.api_user, their_user["api_user"]}


async def test_a_squatted_name_cannot_break_account_creation(
    platform: PlatformProcess, tenant: Tenant
) -> None:
    future = unique_name("globex")
    # What the first API user of `future` would have been called, before and now.
    squats = {f"{future}_trigger": 201, "trigger": 409, f"{future}.trigger": 400}
    for squatted, status in squats.items():
        # 409: the tenant's own first user is "trigger"; 400: a dot is no name character.
        answer = await new_user(tenant, squatted)
        assert answer.status_code == status, answer.text
    async with httpx.AsyncClient(base_url=platform.url) as client:
        made = await client.post("/v1/admin/accounts", json={"name": future}, headers=ADMIN)
        assert made.status_code == 201, made.text
        creds = envelope(made)["Result"]
        assert creds["api_user"] == f"{future}.trigger"
        auth = httpx.BasicAuth(creds["api_user"], creds["api_key"])
        listed = envelope(await client.get("/v1/api-users", auth=auth))["Result"]
        assert [(u["api_user"], u["name"]) for u in listed] == [(f"{future}.trigger", "trigger")]


@pytest.mark.parametrize("name", ["a.b.cdef", "acct.trigger"])
async def test_a_name_cannot_look_like_a_login(tenant: Tenant, name: str) -> None:
    answer = await new_user(tenant, name)
    assert (answer.status_code, envelope(answer)["Code"]) == (400, "invalid_value")


async def test_users_are_deleted_and_rekeyed_by_name_or_login(tenant: Tenant) -> None:
    client = tenant.client("ingest")
    name = unique_name("ops")
    created = envelope(await new_user(tenant, name))["Result"]
    renewed = await client.post(f"/v1/api-users/{created['api_user']}/key")
    assert renewed.status_code == 200, renewed.text
    assert envelope(renewed)["Result"]["api_user"] == created["api_user"]
    async with httpx.AsyncClient(base_url=str(tenant.urls.ingest)) as other:
        old = httpx.BasicAuth(created["api_user"], created["api_key"])
        assert (await other.get("/v1/api-users", auth=old)).status_code == 401
    assert (await client.delete(f"/v1/api-users/{name}")).status_code == 200
    assert (await client.delete(f"/v1/api-users/{name}")).status_code == 404
