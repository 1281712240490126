"""Templates on the real PostgreSQL: versions, visibility across accounts and of public
templates, approval in sensitive accounts, what may be sent, the per-account limit under
concurrency, filters and pages."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import asyncpg
import pytest

from postwire_common import db
from postwire_common.errors import AccessDenied, NotAvailable, NotFound
from postwire_ingest.template_review_store import TemplateReviewStore
from postwire_ingest.template_store import TemplateQuery, TemplateStore
from postwire_ingest.templates import Draft, Status, TemplateType, check_draft
from postwire_testkit.infra import migrated_database, unique_name

pytestmark = pytest.mark.integration

TRIGGER, BATCH = TemplateType.TRIGGER, TemplateType.BATCH


@pytest.fixture(scope="module")
async def pool() -> AsyncIterator[asyncpg.Pool]:
    async with migrated_database() as url:
        made: asyncpg.Pool = await db.create_pool(url)
        yield made
        await made.close()


async def account(pool: asyncpg.Pool, *, sensitive: bool = False) -> str:
    account_id = unique_name("acct")
    await pool.execute(
        "INSERT INTO ingest.accounts (id, name, sensitive) VALUES ($1, $1, $2)",
        account_id,
        sensitive,
    )
    return account_id


def draft(name: str = "welcome", subject: str = "Hi {{name}}", text: str = "t") -> Draft:
    return Draft(name=name, subject=subject, text=text, html=f"<p>{text}</p>")


async def make(
    store: TemplateStore, account_id: str, made: Draft | None = None, kind: TemplateType = TRIGGER
) -> str:
    made = made or draft()
    return (await store.create(account_id, made, kind, check_draft(made), 1000)).id


async def test_an_update_adds_a_version_and_older_ones_stay(pool: asyncpg.Pool) -> None:
    store, me = TemplateStore(pool), await account(pool)
    first = await store.create(me, draft(), TRIGGER, ("name",), 1000)
    assert (first.version, first.status, first.params) == (1, Status.APPROVED, ("name",))
    assert (first.subject, first.text, first.html) == ("Hi {{name}}", "t", "<p>t</p>")
    changed = draft("renamed", "Order {{order}}", "v2 {{name}}")
    second = await store.update(me, first.id, changed, check_draft(changed))
    assert (second.version, second.name, second.params) == (2, "renamed", ("order", "name"))
    assert second.created_at == first.created_at
    assert second.updated_at >= first.updated_at

    assert (await store.get(me, first.id)).subject == "Order {{order}}"
    old = await store.get(me, first.id, 1)
    assert (old.version, old.subject, old.params) == (1, "Hi {{name}}", ("name",))
    with pytest.raises(NotFound, match="with a version 3"):
        await store.get(me, first.id, 3)
    versions = await store.versions(me, first.id)
    assert [(v["version"], v["current"]) for v in versions] == [(2, True), (1, False)]


async def test_another_accounts_template_is_not_found_anywhere(pool: asyncpg.Pool) -> None:
    store, me, other = TemplateStore(pool), await account(pool), await account(pool)
    mine = await make(store, me)
    for attempt in (
        store.get(other, mine),
        store.versions(other, mine),
        store.update(other, mine, draft(), ("name",)),
        store.copy(other, mine, None, None, 1000),
        store.delete(other, mine),
        store.for_sending(other, mine),
    ):
        with pytest.raises(NotFound):
            await attempt
    assert await store.list_templates(TemplateQuery(other, template_id=mine)) == []
    assert (await store.get(me, mine)).id == mine


async def test_public_templates_are_seen_sent_and_copied_but_not_changed(
    pool: asyncpg.Pool,
) -> None:
    store, operator = TemplateStore(pool), TemplateReviewStore(pool)
    me = await account(pool, sensitive=True)
    made = draft("public welcome")
    public = await operator.publish(made, BATCH, check_draft(made))
    assert (public.public, public.status) == (True, Status.APPROVED)
    assert (await store.get(me, public.id)).public
    assert (await store.for_sending(me, public.id)).id == public.id
    listed = await store.list_templates(TemplateQuery(me, public=True))
    assert public.id in [r["id"] for r in listed]
    assert all(r["account_id"] is None for r in listed)
    with pytest.raises(AccessDenied, match="public template: it cannot be changed; copy it"):
        await store.update(me, public.id, draft(), ("name",))
    with pytest.raises(AccessDenied, match="cannot be deleted"):
        await store.delete(me, public.id)

    copied = await store.copy(me, public.id, "my welcome", TRIGGER, 1000)
    assert (copied.account_id, copied.name, copied.type) == (me, "my welcome", TRIGGER)
    assert (copied.subject, copied.html, copied.params) == (public.subject, public.html, ("name",))
    assert copied.status is Status.APPROVING  # the account is sensitive
    same = await store.copy(me, public.id, None, None, 1000)
    assert (same.name, same.type) == ("public welcome", BATCH)

    with pytest.raises(NotAvailable, match="always approved"):
        await operator.review(public.id, Status.REJECTED, "no")
    await operator.delete_public(public.id)
    with pytest.raises(NotFound):
        await store.get(me, public.id)
    assert (await store.get(me, copied.id)).subject == public.subject  # copies stay


async def test_a_sensitive_accounts_templates_wait_for_the_operator(pool: asyncpg.Pool) -> None:
    store, operator = TemplateStore(pool), TemplateReviewStore(pool)
    me = await account(pool)
    await operator.set_sensitive(me, True)
    template = await make(store, me)
    assert (await store.get(me, template)).status is Status.APPROVING
    with pytest.raises(NotAvailable, match="waiting for an operator's approval"):
        await store.for_sending(me, template)
    waiting = await operator.reviewable(Status.APPROVING, me, 10, None)
    assert [(r["id"], r["account"]) for r in waiting] == [(template, me)]

    assert await operator.review(template, Status.APPROVED, None)
    assert not await operator.review(template, Status.APPROVED, None)  # not_changed
    assert (await store.for_sending(me, template)).status is Status.APPROVED

    assert await operator.review(template, Status.REJECTED, "gambling ads")
    rejected = await store.get(me, template)
    assert (rejected.status, rejected.reject_reason) == (Status.REJECTED, "gambling ads")
    with pytest.raises(NotAvailable, match=r"was rejected \(gambling ads\)"):
        await store.for_sending(me, template)

    # A change is submitted again; once the account is no longer sensitive, it is approved.
    resubmitted = await store.update(me, template, draft(), ("name",))
    assert (resubmitted.status, resubmitted.reject_reason) == (Status.APPROVING, None)
    assert (await operator.set_sensitive(me, False)) == {"account": me, "sensitive": False}
    assert (await store.get(me, template)).status is Status.APPROVING  # kept as it was
    assert (await store.update(me, template, draft(), ("name",))).status is Status.APPROVED
    with pytest.raises(NotFound):
        await operator.set_sensitive(unique_name("nobody"), True)
    with pytest.raises(NotFound):
        await operator.review("NOSUCHTEMPLATE", Status.APPROVED, None)


async def test_delete_removes_every_version(pool: asyncpg.Pool) -> None:
    store, me = TemplateStore(pool), await account(pool)
    template = await make(store, me)
    await store.update(me, template, draft(), ("name",))
    await store.delete(me, template)
    with pytest.raises(NotFound):
        await store.get(me, template, 1)
    with pytest.raises(NotFound):
        await store.delete(me, template)
    left = await pool.fetchval(
        "SELECT count(*) FROM ingest.template_versions WHERE template_id = $1", template
    )
    assert left == 0


async def test_the_limit_holds_when_creations_race(pool: asyncpg.Pool) -> None:
    store, me = TemplateStore(pool), await account(pool)
    outcomes = await asyncio.gather(
        *(store.create(me, draft(f"t{i}"), TRIGGER, ("name",), 3) for i in range(6)),
        return_exceptions=True,
    )
    refused = [o for o in outcomes if isinstance(o, NotAvailable)]
    assert len(refused) == 3, outcomes
    assert refused[0].description == "an account can have at most 3 templates"
    assert len(await store.list_templates(TemplateQuery(me, public=False))) == 3
    template = await store.list_templates(TemplateQuery(me, public=False, limit=1))
    with pytest.raises(NotAvailable):  # a copy is a new template too
        await store.copy(me, template[0]["id"], None, None, 3)


async def test_filters_and_pages(pool: asyncpg.Pool) -> None:
    store, me = TemplateStore(pool), await account(pool)
    made = [
        await make(store, me, draft("Order shipped"), TRIGGER),
        await make(store, me, draft("Newsletter May"), BATCH),
        await make(store, me, draft("order cancelled"), TRIGGER),
    ]
    mine = TemplateQuery(me, public=False)

    async def ids(**filters: object) -> list[str]:
        query = TemplateQuery(me, public=False, **filters)  # type: ignore[arg-type]
        return [r["id"] for r in await store.list_templates(query)]

    assert await ids() == made[::-1]
    assert await ids(name="ORDER") == [made[2], made[0]]
    assert await ids(type=BATCH) == [made[1]]
    assert await ids(template_id=made[1]) == [made[1]]
    assert await ids(status=Status.APPROVING) == []
    first = (await store.list_templates(mine))[-1]
    assert await ids(since=first["created_at"]) == made[::-1]
    assert await ids(until=first["created_at"]) == []
    page = await store.list_templates(TemplateQuery(me, public=False, limit=2))
    assert [r["id"] for r in page] == [made[2], made[1]]
    rest = await ids(after=(page[-1]["created_at"], page[-1]["id"]))
    assert rest == [made[0]]
    summary = page[0]
    assert "text" not in summary
    assert "html" not in summary
    assert (summary["subject"], summary["params"], summary["version"]) == (
        "Hi {{name}}",
        ["name"],
        1,
    )
