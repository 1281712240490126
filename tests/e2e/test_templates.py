"""Templates through the API: the parameter rules, JSON and multipart (HTML as a file),
preview with escaping and literal values, missing_macros, versions, copies, public
templates, approval of a sensitive account's templates, isolation and limits."""

from __future__ import annotations

from typing import Any

import asyncpg
import httpx
import pytest

from postwire_testkit.api import Tenant, envelope
from postwire_testkit.platform import PlatformProcess

from .conftest import ADMIN_TOKEN

ADMIN = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
NAME_CHARS = "a name has only letters (A-Z, a-z), digits and _"
NOT_DIGITS = "a name must not be all digits"
NOT_START = "a name must not start with a digit or _"


def api(tenant: Tenant) -> httpx.AsyncClient:
    return tenant.client("ingest")


def admin(platform: PlatformProcess) -> httpx.AsyncClient:
    return httpx.AsyncClient(base_url=platform.url, headers=ADMIN, timeout=30)


def result(answer: httpx.Response, status: int = 200) -> Any:
    assert answer.status_code == status, answer.text
    body = envelope(answer)
    assert body["Code"] == "ok", body
    return body["Result"]


def refused(answer: httpx.Response, status: int, code: str) -> str:
    assert answer.status_code == status, answer.text
    body = envelope(answer)
    assert body["Code"] == code, body
    assert body["Result"] is None
    return str(body["Description"])


def template(**fields: Any) -> dict[str, Any]:
    return {
        "name": "welcome",
        "type": "trigger",
        "subject": "Welcome {{name}}",
        "text": "Hi {{name}}, your code is {{code}}.",
        "html": "<p>Hi {{name}}, your code is <b>{{code}}</b>.</p>",
        **fields,
    }


def content(**fields: Any) -> dict[str, Any]:
    """An update's body: a template's content without its type."""
    return {k: v for k, v in template(**fields).items() if k != "type"}


async def create(tenant: Tenant, **fields: Any) -> dict[str, Any]:
    made: dict[str, Any] = result(
        await api(tenant).post("/v1/templates", json=template(**fields)), 201
    )
    return made


# -- creating and the parameter rules -------------------------------------------------------


async def test_a_template_is_created_shown_listed_and_deleted(tenant: Tenant) -> None:
    made = await create(tenant, unsubscribe=True)
    assert set(made) >= {"id", "params", "status"}
    assert (made["params"], made["status"], made["version"]) == (["name", "code"], "approved", 1)
    shown = result(await api(tenant).get(f"/v1/templates/{made['id']}"))
    assert shown["subject"] == "Welcome {{name}}"
    assert shown["html"] == template()["html"]
    assert (shown["type"], shown["unsubscribe"], shown["public"]) == ("trigger", True, False)
    listed = result(await api(tenant).get("/v1/templates", params={"public": "false"}))
    assert [t["id"] for t in listed["templates"]] == [made["id"]]
    assert "html" not in listed["templates"][0]  # listings carry no bodies
    result(await api(tenant).delete(f"/v1/templates/{made['id']}"))
    refused(await api(tenant).get(f"/v1/templates/{made['id']}"), 404, "not_found")
    refused(await api(tenant).delete(f"/v1/templates/{made['id']}"), 404, "not_found")


@pytest.mark.parametrize(
    ("fields", "description"),
    [
        ({"subject": "Hi {{first name}}"}, f"subject: parameter {{{{first name}}}}: {NAME_CHARS}"),
        ({"text": "Dear {{first-name}}"}, f"text: parameter {{{{first-name}}}}: {NAME_CHARS}"),
        ({"html": "<p>{{user.name}}</p>"}, f"html: parameter {{{{user.name}}}}: {NAME_CHARS}"),
        ({"text": "{{ 7*7 }}"}, f"text: parameter {{{{7*7}}}}: {NAME_CHARS}"),
        ({"text": "Code {{123}}"}, f"text: parameter {{{{123}}}}: {NOT_DIGITS}"),
        ({"text": "Code {{1st}}"}, f"text: parameter {{{{1st}}}}: {NOT_START}"),
        ({"html": "{{_private}}"}, f"html: parameter {{{{_private}}}}: {NOT_START}"),
        ({"text": "{{__class__}}"}, f"text: parameter {{{{__class__}}}}: {NOT_START}"),
        ({"text": "{{}}"}, "text: parameter {{}}: a name must not be empty"),
        ({"text": "{{" + "a" * 65 + "}}"}, "a name has at most 64 characters"),
        (
            {"subject": "Hi", "text": " ".join(f"{{{{p{i}}}}}" for i in range(16)), "html": None},
            "a template has at most 15 distinct parameters; this one has 16: p0, p1",
        ),
    ],
)
async def test_each_parameter_rule_is_answered_naming_the_parameter(
    tenant: Tenant, fields: dict[str, Any], description: str
) -> None:
    answer = await api(tenant).post("/v1/templates", json=template(**fields))
    assert description in refused(answer, 400, "invalid_value")


async def test_good_names_and_fifteen_parameters_are_taken(tenant: Tenant) -> None:
    fourteen = " ".join(f"{{{{p{i}}}}}" for i in range(14))
    made = await create(tenant, subject="Hi {{ Name_2 }}", text=fourteen + " {{p0}}", html=None)
    assert made["params"] == ["Name_2", *(f"p{i}" for i in range(14))]


@pytest.mark.parametrize(
    ("fields", "code", "description"),
    [
        ({"name": ""}, "invalid_value", "name: String should have at least 1 character"),
        ({"name": "n" * 65}, "invalid_value", "name: String should have at most 64"),
        ({"name": "   "}, "empty_value", "name is required"),
        ({"subject": "s" * 257}, "invalid_value", "subject: String should have at most 256"),
        ({"subject": "Hi\r\nBcc: x@example.org"}, "invalid_value", "subject must not contain"),
        ({"text": None, "html": None}, "empty_value", "text or html is required"),
        ({"type": "marketing"}, "invalid_value", "type: Input should be 'trigger' or 'batch'"),
        ({"html": "x" * (1024 * 1024 + 1)}, "size_exceeded", "html is larger than 1 MB"),
        ({"text": "é" * (512 * 1024 + 1)}, "size_exceeded", "text is larger than 1 MB"),
    ],
)
async def test_content_rules_and_limits(
    tenant: Tenant, fields: dict[str, Any], code: str, description: str
) -> None:
    answer = await api(tenant).post("/v1/templates", json=template(**fields))
    assert description in refused(answer, 400, code)


async def test_bodies_of_1_mb_each_are_taken_but_not_a_larger_request(tenant: Tenant) -> None:
    mb = 1024 * 1024
    made = await create(tenant, text="t" * mb, html='"' * mb)  # 2 MB of JSON escapes
    assert made["params"] == ["name"]
    answer = await api(tenant).post(
        "/v1/templates",
        content=b"{" + b" " * (8 * mb) + b"}",
        headers={"content-type": "application/json"},
    )
    assert "larger than 8 MB" in refused(answer, 400, "size_exceeded")


async def test_an_account_has_at_most_1000_templates(
    tenant: Tenant, db: asyncpg.Connection
) -> None:
    kept = await create(tenant)
    account_id = await db.fetchval("SELECT id FROM ingest.accounts WHERE name = $1", tenant.name)
    await db.execute(
        "INSERT INTO ingest.templates (id, account_id, name, type, status, version) "
        "SELECT $1 || n, $2, 'filler', 'trigger', 'approved', 1 "
        "FROM generate_series(1, 999) n",
        f"FILL{tenant.name}",
        account_id,
    )
    answer = await api(tenant).post("/v1/templates", json=template())
    assert refused(answer, 400, "not_available") == "an account can have at most 1000 templates"
    answer = await api(tenant).post(f"/v1/templates/{kept['id']}/copy")
    refused(answer, 400, "not_available")
    result(await api(tenant).delete(f"/v1/templates/{kept['id']}"))
    await create(tenant)


# -- multipart ----------------------------------------------------------------------------


async def test_the_html_body_may_be_uploaded_as_a_file(tenant: Tenant) -> None:
    page = "\ufeff<html><body><h1>Hello {{name}}</h1><p>Order {{order}}</p></body></html>"
    answer = await api(tenant).post(
        "/v1/templates",
        data={
            "name": "from a file",
            "type": "batch",
            "subject": "Order {{order}}",
            "unsubscribe": "true",
        },
        files={"html": ("welcome.html", page.encode(), "text/html")},
    )
    made = result(answer, 201)
    assert made["params"] == ["order", "name"]
    shown = result(await api(tenant).get(f"/v1/templates/{made['id']}"))
    assert shown["html"] == page.removeprefix("\ufeff")  # the BOM is not content
    assert (shown["type"], shown["unsubscribe"], shown["text"]) == ("batch", True, None)

    changed = await api(tenant).put(
        f"/v1/templates/{made['id']}",
        data={"name": "from a file", "subject": "Order {{order}}", "text": "plain {{order}}"},
        files={"html": ("v2.html", b"<p>v2 {{order}}</p>", "text/html")},
    )
    assert result(changed)["version"] == 2


@pytest.mark.parametrize(
    ("data", "files", "code", "description"),
    [
        (
            {"name": "x", "type": "trigger", "subject": "s"},
            {"html": ("a.html", b"\xff\xfe<p>", "text/html")},
            "invalid_value",
            "html: the file is not UTF-8 text",
        ),
        (
            {"name": "x", "type": "trigger", "subject": "s"},
            {"text": ("a.txt", b"t", "text/plain")},
            "invalid_value",
            "text: only html may be a file",
        ),
        (
            {"name": "x", "type": "trigger", "subject": "s", "unsubscribe": "1"},
            {"html": ("a.html", b"<p>", "text/html")},
            "invalid_value",
            "unsubscribe: true or false",
        ),
        (
            {"name": "x", "type": "trigger", "subject": "{{9}}"},
            {"html": ("a.html", b"<p>", "text/html")},
            "invalid_value",
            f"subject: parameter {{{{9}}}}: {NOT_DIGITS}",
        ),
        (
            {"name": "x", "type": "trigger"},
            {"html": ("a.html", b"<p>", "text/html")},
            "empty_value",
            "subject is required",
        ),
        (
            {"name": "x", "type": "trigger", "subject": "s", "label": "l"},
            {"html": ("a.html", b"<p>", "text/html")},
            "invalid_value",
            "label: Extra inputs are not permitted",
        ),
        (
            {"name": "x", "type": "trigger", "subject": "s"},
            {"html": ("a.html", b"x" * (1024 * 1024 + 1), "text/html")},
            "size_exceeded",
            "html is larger than 1 MB",
        ),
    ],
)
async def test_bad_multipart_bodies_are_refused(
    tenant: Tenant, data: dict[str, str], files: dict[str, Any], code: str, description: str
) -> None:
    answer = await api(tenant).post("/v1/templates", data=data, files=files)
    assert description in refused(answer, 400, code)


# -- preview ------------------------------------------------------------------------------


async def test_preview_inserts_values_as_written_and_escapes_them_in_html(tenant: Tenant) -> None:
    made = await create(tenant)
    values = {"name": "<script>alert(1)</script> & Tom", "code": "{{name}} ${7*7} {{7*7}} #{7*7}"}
    answer = await api(tenant).post(
        f"/v1/templates/{made['id']}/preview", json={"variables": values}
    )
    shown = result(answer)
    assert shown["subject"] == "Welcome <script>alert(1)</script> & Tom"
    assert shown["text"] == f"Hi {values['name']}, your code is {values['code']}."
    assert shown["html"] == (
        "<p>Hi &lt;script&gt;alert(1)&lt;/script&gt; &amp; Tom, your code is "
        "<b>{{name}} ${7*7} {{7*7}} #{7*7}</b>.</p>"
    )


async def test_preview_names_every_missing_value(tenant: Tenant) -> None:
    made = await create(tenant)
    answer = await api(tenant).post(f"/v1/templates/{made['id']}/preview", json={"variables": {}})
    assert refused(answer, 400, "missing_macros") == "no value for template parameters: name, code"
    answer = await api(tenant).post(
        f"/v1/templates/{made['id']}/preview", json={"variables": {"code": "1", "other": "x"}}
    )
    assert refused(answer, 400, "missing_macros") == "no value for template parameters: name"


async def test_a_subject_value_cannot_add_a_header(tenant: Tenant) -> None:
    made = await create(tenant)
    variables = {"name": "Ann\r\nBcc: victim@example.org", "code": "1"}
    answer = await api(tenant).post(
        f"/v1/templates/{made['id']}/preview", json={"variables": variables}
    )
    assert refused(answer, 400, "invalid_value").startswith("variables.name (used in the subject)")


# -- versions and copies ------------------------------------------------------------------


async def test_an_update_is_a_new_version_and_old_ones_stay_readable(tenant: Tenant) -> None:
    made = await create(tenant)
    changed = result(
        await api(tenant).put(
            f"/v1/templates/{made['id']}",
            json={"name": "welcome v2", "subject": "Hello {{who}}", "text": "v2 {{who}}"},
        )
    )
    assert (changed["version"], changed["params"], changed["html"]) == (2, ["who"], None)
    old = result(await api(tenant).get(f"/v1/templates/{made['id']}/versions/1"))
    assert (old["version"], old["subject"], old["params"]) == (
        1,
        "Welcome {{name}}",
        ["name", "code"],
    )
    versions = result(await api(tenant).get(f"/v1/templates/{made['id']}/versions"))["versions"]
    assert [(v["version"], v["current"]) for v in versions] == [(2, True), (1, False)]
    old_preview = await api(tenant).post(
        f"/v1/templates/{made['id']}/preview",
        json={"variables": {"name": "A", "code": "7"}, "version": 1},
    )
    assert result(old_preview)["subject"] == "Welcome A"
    refused(await api(tenant).get(f"/v1/templates/{made['id']}/versions/3"), 404, "not_found")
    answer = await api(tenant).put(
        f"/v1/templates/{made['id']}", json={**template(), "type": "batch"}
    )
    assert "type" in refused(answer, 400, "invalid_value")  # the type stays; copy to change it


async def test_a_copy_is_a_new_template_with_the_same_content(tenant: Tenant) -> None:
    made = await create(tenant)
    copied = result(
        await api(tenant).post(f"/v1/templates/{made['id']}/copy", json={"type": "batch"}), 201
    )
    assert copied["id"] != made["id"]
    assert (copied["name"], copied["type"], copied["params"]) == (
        "welcome",
        "batch",
        ["name", "code"],
    )
    named = result(
        await api(tenant).post(f"/v1/templates/{made['id']}/copy", json={"name": "b"}), 201
    )
    assert (named["name"], named["type"]) == ("b", "trigger")


# -- isolation ----------------------------------------------------------------------------


async def test_another_accounts_template_is_not_found(tenant: Tenant, other_tenant: Tenant) -> None:
    made = await create(tenant)
    theirs = api(other_tenant)
    path = f"/v1/templates/{made['id']}"
    for answer in (
        await theirs.get(path),
        await theirs.put(path, json=content()),
        await theirs.delete(path),
        await theirs.get(f"{path}/versions"),
        await theirs.get(f"{path}/versions/1"),
        await theirs.post(f"{path}/copy"),
        await theirs.post(f"{path}/preview", json={"variables": {"name": "a", "code": "b"}}),
    ):
        refused(answer, 404, "not_found")
    listed = result(await theirs.get("/v1/templates", params={"id": made["id"]}))
    assert listed["templates"] == []
    assert result(await api(tenant).get(path))["id"] == made["id"]


# -- listing ------------------------------------------------------------------------------


async def test_filters_and_pages(tenant: Tenant) -> None:
    made = [
        await create(tenant, name="Order shipped"),
        await create(tenant, name="Newsletter", type="batch"),
        await create(tenant, name="order cancelled"),
    ]
    ids = [m["id"] for m in made]

    async def listed(**params: str) -> list[str]:
        found = result(await api(tenant).get("/v1/templates", params={"public": "false", **params}))
        return [t["id"] for t in found["templates"]]

    assert await listed() == ids[::-1]
    assert await listed(name="ORDER") == [ids[2], ids[0]]
    assert await listed(type="batch") == [ids[1]]
    assert await listed(id=ids[0]) == [ids[0]]
    assert await listed(status="approving") == []
    assert await listed(since="2999-01-01T00:00:00Z") == []
    assert await listed(until="2999-01-01T00:00:00Z") == ids[::-1]
    page = result(await api(tenant).get("/v1/templates", params={"public": "false", "limit": "2"}))
    assert [t["id"] for t in page["templates"]] == [ids[2], ids[1]]
    assert await listed(limit="2", cursor=page["next_cursor"]) == [ids[0]]
    refused(
        await api(tenant).get("/v1/templates", params={"cursor": "nonsense"}), 400, "invalid_value"
    )
    refused(await api(tenant).get("/v1/templates", params={"status": "sent"}), 400, "invalid_value")
    refused(await api(tenant).get("/v1/templates", params={"owner": "me"}), 400, "invalid_value")


# -- the operator: approval and public templates ------------------------------------------


async def test_a_sensitive_accounts_templates_wait_for_approval(
    tenant: Tenant, platform: PlatformProcess
) -> None:
    async with admin(platform) as operator:
        marked = await operator.put(
            f"/v1/admin/accounts/{tenant.name}/sensitive", json={"sensitive": True}
        )
        assert result(marked) == {"account": tenant.name, "sensitive": True}
        made = await create(tenant)
        assert made["status"] == "approving"
        queue = result(
            await operator.get(
                "/v1/admin/templates", params={"status": "approving", "account": tenant.name}
            )
        )
        assert [(t["id"], t["account"]) for t in queue["templates"]] == [(made["id"], tenant.name)]
        shown = result(await operator.get(f"/v1/admin/templates/{made['id']}"))
        assert shown["html"] == template()["html"]  # the operator reads what it approves

        approved = await operator.post(f"/v1/admin/templates/{made['id']}/approve")
        assert result(approved)["status"] == "approved"
        again = await operator.post(f"/v1/admin/templates/{made['id']}/approve")
        assert again.status_code == 200
        assert envelope(again)["Code"] == "not_changed"
        status = result(await api(tenant).get(f"/v1/templates/{made['id']}"))["status"]
        assert status == "approved"

        rejected = await operator.post(
            f"/v1/admin/templates/{made['id']}/reject", json={"reason": "gambling is not allowed"}
        )
        assert result(rejected)["status"] == "rejected"
        shown = result(await api(tenant).get(f"/v1/templates/{made['id']}"))
        assert (shown["status"], shown["reject_reason"]) == ("rejected", "gambling is not allowed")

        # Changing it submits it again.
        changed = await api(tenant).put(f"/v1/templates/{made['id']}", json=content())
        assert (result(changed)["status"], result(changed)["reject_reason"]) == ("approving", None)

        unmarked = await operator.put(
            f"/v1/admin/accounts/{tenant.name}/sensitive", json={"sensitive": False}
        )
        assert result(unmarked)["sensitive"] is False
        assert (await create(tenant))["status"] == "approved"
        refused(
            await operator.put(
                "/v1/admin/accounts/no-such-account/sensitive", json={"sensitive": True}
            ),
            404,
            "not_found",
        )
        refused(await operator.post("/v1/admin/templates/NOSUCH/approve"), 404, "not_found")


async def test_public_templates_are_listed_and_copied_but_not_changed(
    tenant: Tenant, other_tenant: Tenant, platform: PlatformProcess
) -> None:
    async with admin(platform) as operator:
        published = await operator.post(
            "/v1/admin/templates",
            data={"name": "Public welcome", "type": "trigger", "subject": "Welcome {{name}}"},
            files={"html": ("welcome.html", b"<h1>Welcome {{name}}</h1>", "text/html")},
        )
        public = result(published, 201)
        assert (public["status"], public["params"]) == ("approved", ["name"])
        for someone in (tenant, other_tenant):
            listed = result(await api(someone).get("/v1/templates", params={"public": "true"}))
            mine = [t for t in listed["templates"] if t["id"] == public["id"]]
            assert [t["public"] for t in mine] == [True]
        path = f"/v1/templates/{public['id']}"
        assert result(await api(tenant).get(path))["html"] == "<h1>Welcome {{name}}</h1>"
        preview = await api(tenant).post(f"{path}/preview", json={"variables": {"name": "Ann"}})
        assert result(preview)["html"] == "<h1>Welcome Ann</h1>"
        assert "public template" in refused(
            await api(tenant).put(path, json=content()), 403, "access_denied"
        )
        refused(await api(tenant).delete(path), 403, "access_denied")

        copy = result(await api(tenant).post(f"{path}/copy", json={"name": "my welcome"}), 201)
        mine = result(await api(tenant).get(f"/v1/templates/{copy['id']}"))
        assert (mine["public"], mine["name"], mine["html"]) == (
            False,
            "my welcome",
            "<h1>Welcome {{name}}</h1>",
        )
        refused(await api(other_tenant).get(f"/v1/templates/{copy['id']}"), 404, "not_found")

        refused(
            await operator.post(f"/v1/admin/templates/{public['id']}/approve"), 400, "not_available"
        )
        result(await operator.delete(f"/v1/admin/templates/{public['id']}"))
        refused(await api(tenant).get(path), 404, "not_found")
        assert result(await api(tenant).get(f"/v1/templates/{copy['id']}"))["name"] == "my welcome"


async def test_the_operator_routes_need_the_admin_token(
    tenant: Tenant, platform: PlatformProcess
) -> None:
    async with httpx.AsyncClient(base_url=platform.url) as stranger:
        for method, path in (
            ("PUT", f"/v1/admin/accounts/{tenant.name}/sensitive"),
            ("POST", "/v1/admin/templates"),
            ("GET", "/v1/admin/templates"),
            ("POST", "/v1/admin/templates/X/approve"),
            ("POST", "/v1/admin/templates/X/reject"),
        ):
            answer = await stranger.request(method, path, json={"sensitive": True})
            refused(answer, 401, "authorization_failed")
        # An account's credentials are not the operator's.
        answer = await api(tenant).put(
            f"/v1/admin/accounts/{tenant.name}/sensitive", json={"sensitive": True}
        )
        refused(answer, 401, "authorization_failed")
