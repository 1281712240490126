"""The SQL of templates (``ingest.templates``, ``ingest.template_versions``) as accounts
and the send path use them; the operator's statements are in ``template_review_store.py``.

An account sees its own templates and the public ones (``account_id`` NULL); another
account's template is ``not_found``, a public one it tries to change is ``access_denied``.
Every change of a template's content adds a version; older versions stay readable.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import asyncpg

from postwire_common.errors import AccessDenied, NotAvailable, NotFound
from postwire_common.ids import new_id
from postwire_ingest.task_store import TaskStore
from postwire_ingest.templates import Draft, Status, Template, TemplateType

# A template at one version: its current one ($2 NULL) or the one asked for; any
# account's (the operator reads them to review them).
ANY_TEMPLATE = """
SELECT t.id, t.account_id, t.name, t.type, t.status, t.reject_reason, v.version, v.subject,
    v.text, v.html, v.unsubscribe, v.params, t.created_at, t.updated_at
FROM ingest.templates t JOIN ingest.template_versions v
    ON v.template_id = t.id AND v.version = coalesce($2::integer, t.version)
WHERE t.id = $1
"""
# One the account $3 sees: its own or a public one.
_TEMPLATE = ANY_TEMPLATE + "AND (t.account_id = $3 OR t.account_id IS NULL)"

# What listings show: no bodies (each may be 1 MB).
_SUMMARY = """
SELECT t.id, t.account_id, t.name, t.type, t.status, t.reject_reason, t.version, v.subject,
    v.unsubscribe, v.params, t.created_at, t.updated_at
FROM ingest.templates t JOIN ingest.template_versions v
    ON v.template_id = t.id AND v.version = t.version
"""

_INSERT_VERSION = """
INSERT INTO ingest.template_versions (template_id, version, subject, text, html, unsubscribe,
    params)
VALUES ($1, $2, $3, $4, $5, $6, $7)
"""


@dataclass(frozen=True, slots=True)
class TemplateQuery:
    """A listing's filters (each optional), newest first."""

    account_id: str
    name: str | None = None  # part of the name, any case
    template_id: str | None = None
    type: TemplateType | None = None
    status: Status | None = None
    public: bool | None = None  # True: only public ones; False: only the account's own
    since: datetime | None = None  # created at or after
    until: datetime | None = None  # created before
    limit: int = 50
    after: tuple[datetime, str] | None = None  # cursor: (created_at, id) of the last row


def template_from_row(row: asyncpg.Record) -> Template:
    return Template(
        id=row["id"],
        account_id=row["account_id"],
        name=row["name"],
        type=TemplateType(row["type"]),
        status=Status(row["status"]),
        reject_reason=row["reject_reason"],
        version=row["version"],
        subject=row["subject"],
        text=row["text"],
        html=row["html"],
        unsubscribe=row["unsubscribe"],
        params=tuple(row["params"]),
        created_at=row["created_at"],
        updated_at=row["updated_at"],
    )


async def insert_template(
    conn: asyncpg.Connection,
    account_id: str | None,
    draft: Draft,
    kind: TemplateType,
    params: Sequence[str],
    status: Status,
) -> Template:
    """Insert a template and its first version; answer it."""
    template_id = new_id()
    await conn.execute(
        "INSERT INTO ingest.templates (id, account_id, name, type, status, version) "
        "VALUES ($1, $2, $3, $4, $5, 1)",
        template_id,
        account_id,
        draft.name,
        kind.value,
        status.value,
    )
    await conn.execute(
        _INSERT_VERSION,
        template_id,
        1,
        draft.subject,
        draft.text,
        draft.html,
        draft.unsubscribe,
        list(params),
    )
    row = await conn.fetchrow(_TEMPLATE, template_id, None, account_id)
    assert row is not None
    return template_from_row(row)


class TemplateStore:
    def __init__(self, pool: asyncpg.Pool) -> None:
        self.pool = pool

    @staticmethod
    async def template_in_use(conn: asyncpg.Connection, template_id: str) -> bool:
        """Whether a scheduled or running task sends this template: then it cannot be
        deleted (``not_available``)."""
        return await TaskStore.uses_template(conn, template_id)

    # -- what an account does -------------------------------------------------------------

    async def create(
        self,
        account_id: str,
        draft: Draft,
        kind: TemplateType,
        params: Sequence[str],
        max_templates: int,
    ) -> Template:
        """A new template of the account, approved unless the account is sensitive."""
        async with self.pool.acquire() as conn, conn.transaction():
            await self._lock_account(conn, account_id)
            count = await conn.fetchval(
                "SELECT count(*) FROM ingest.templates WHERE account_id = $1", account_id
            )
            if count >= max_templates:
                raise NotAvailable(f"an account can have at most {max_templates} templates")
            status = await self._new_status(conn, account_id)
            return await insert_template(conn, account_id, draft, kind, params, status)

    async def update(
        self, account_id: str, template_id: str, draft: Draft, params: Sequence[str]
    ) -> Template:
        """A new version becomes current; its status starts again (approving in a
        sensitive account, else approved). Older versions stay as they were."""
        async with self.pool.acquire() as conn, conn.transaction():
            current = await self._own(conn, account_id, template_id, "changed")
            version = current["version"] + 1
            status = await self._new_status(conn, account_id)
            await conn.execute(
                _INSERT_VERSION,
                template_id,
                version,
                draft.subject,
                draft.text,
                draft.html,
                draft.unsubscribe,
                list(params),
            )
            await conn.execute(
                "UPDATE ingest.templates SET name = $2, version = $3, status = $4, "
                "reject_reason = NULL, updated_at = now() WHERE id = $1",
                template_id,
                draft.name,
                version,
                status.value,
            )
            row = await conn.fetchrow(_TEMPLATE, template_id, None, account_id)
        assert row is not None
        return template_from_row(row)

    async def copy(
        self,
        account_id: str,
        template_id: str,
        name: str | None,
        kind: TemplateType | None,
        max_templates: int,
    ) -> Template:
        """A new template of the account with the current content of one it sees (its
        own or a public one), under ``name`` and ``kind`` when given."""
        source = await self.get(account_id, template_id)
        draft = Draft(
            name=name if name is not None else source.name,
            subject=source.subject,
            text=source.text,
            html=source.html,
            unsubscribe=source.unsubscribe,
        )
        return await self.create(
            account_id, draft, kind or source.type, source.params, max_templates
        )

    async def delete(self, account_id: str, template_id: str) -> None:
        async with self.pool.acquire() as conn, conn.transaction():
            await self._own(conn, account_id, template_id, "deleted")
            if await self.template_in_use(conn, template_id):
                raise NotAvailable(f"template {template_id} is used by a scheduled or running task")
            await conn.execute("DELETE FROM ingest.templates WHERE id = $1", template_id)

    async def get(self, account_id: str, template_id: str, version: int | None = None) -> Template:
        row = await self.pool.fetchrow(_TEMPLATE, template_id, version, account_id)
        if row is None:
            at = "" if version is None else f" with a version {version}"
            raise NotFound(f"no template {template_id}{at}")
        return template_from_row(row)

    async def versions(self, account_id: str, template_id: str) -> list[dict[str, Any]]:
        """Every version of a template the account sees, newest first."""
        rows = await self.pool.fetch(
            "SELECT v.version, v.subject, v.params, v.created_at, v.version = t.version "
            "AS current FROM ingest.templates t JOIN ingest.template_versions v "
            "ON v.template_id = t.id WHERE t.id = $1 "
            "AND (t.account_id = $2 OR t.account_id IS NULL) ORDER BY v.version DESC",
            template_id,
            account_id,
        )
        if not rows:
            raise NotFound(f"no template {template_id}")
        return [dict(r) for r in rows]

    async def list_templates(self, q: TemplateQuery) -> list[dict[str, Any]]:
        """The account's templates and the public ones that match, newest first."""
        args: list[Any] = []
        clauses: list[str] = []

        def add(clause: str, *values: Any) -> None:
            for value in values:
                args.append(value)
                clause = clause.replace("?", f"${len(args)}", 1)
            clauses.append(clause)

        if q.public is None:
            add("(t.account_id = ? OR t.account_id IS NULL)", q.account_id)
        elif q.public:
            add("t.account_id IS NULL")
        else:
            add("t.account_id = ?", q.account_id)
        if q.name is not None:
            add("strpos(lower(t.name), lower(?)) > 0", q.name)
        if q.template_id is not None:
            add("t.id = ?", q.template_id)
        if q.type is not None:
            add("t.type = ?", q.type.value)
        if q.status is not None:
            add("t.status = ?", q.status.value)
        if q.since is not None:
            add("t.created_at >= ?", q.since)
        if q.until is not None:
            add("t.created_at < ?", q.until)
        if q.after is not None:
            add("(t.created_at, t.id) < (?, ?)", *q.after)
        args.append(q.limit)
        rows = await self.pool.fetch(
            _SUMMARY  # clauses are constants; values are parameters
            + " WHERE "
            + " AND ".join(clauses)
            + f" ORDER BY t.created_at DESC, t.id DESC LIMIT ${len(args)}",
            *args,
        )
        return [dict(r) for r in rows]

    async def for_sending(self, account_id: str, template_id: str) -> Template:
        """The current version of a template the account may send: its own or a public
        one (``not_found`` otherwise), approved (``not_available`` otherwise)."""
        template = await self.get(account_id, template_id)
        if template.status is Status.APPROVING:
            raise NotAvailable(
                f"template {template_id} is waiting for an operator's approval; it can be "
                "sent once approved"
            )
        if template.status is Status.REJECTED:
            raise NotAvailable(
                f"template {template_id} was rejected ({template.reject_reason}); change "
                "it to submit it again"
            )
        return template

    # -- integer numbers (Tencent SES's TemplateID; migration 0017) --------------------------

    async def id_of_number(self, account_id: str, number: int) -> str:
        """The id of the template numbered ``number`` that the account sees."""
        found = await self.pool.fetchval(
            "SELECT id FROM ingest.templates WHERE number = $1 "
            "AND (account_id = $2 OR account_id IS NULL)",
            number,
            account_id,
        )
        if found is None:
            raise NotFound(f"no template {number}")
        return str(found)

    async def number_of(self, template_id: str) -> int:
        return int(await self.pool.fetchval(
            "SELECT number FROM ingest.templates WHERE id = $1", template_id
        ))  # fmt: skip

    async def numbered_page(
        self, account_id: str, offset: int, limit: int
    ) -> tuple[list[dict[str, Any]], int]:
        """A page of the templates the account sees by number, and how many there are."""
        rows = await self.pool.fetch(
            "SELECT id, number, name, status, reject_reason, created_at, "
            "count(*) OVER () AS total FROM ingest.templates "
            "WHERE account_id = $1 OR account_id IS NULL ORDER BY number OFFSET $2 LIMIT $3",
            account_id,
            offset,
            limit,
        )
        if rows:
            return [dict(r) for r in rows], int(rows[0]["total"])
        total = await self.pool.fetchval(
            "SELECT count(*) FROM ingest.templates WHERE account_id = $1 OR account_id IS NULL",
            account_id,
        )
        return [], int(total)

    # -- steps ----------------------------------------------------------------------------

    @staticmethod
    async def _lock_account(conn: asyncpg.Connection, account_id: str) -> None:
        # Serialise creations per account so the limit holds under concurrency.
        await conn.execute("SELECT pg_advisory_xact_lock(hashtext('templates:' || $1))", account_id)

    @staticmethod
    async def _new_status(conn: asyncpg.Connection, account_id: str) -> Status:
        sensitive = await conn.fetchval(
            "SELECT sensitive FROM ingest.accounts WHERE id = $1", account_id
        )
        return Status.APPROVING if sensitive else Status.APPROVED

    @staticmethod
    async def _own(
        conn: asyncpg.Connection, account_id: str, template_id: str, what: str
    ) -> asyncpg.Record:
        """The account's own template, locked; a public one is not its to change."""
        row = await conn.fetchrow(
            "SELECT id, account_id, version FROM ingest.templates WHERE id = $1 "
            "AND (account_id = $2 OR account_id IS NULL) FOR UPDATE",
            template_id,
            account_id,
        )
        if row is None:
            raise NotFound(f"no template {template_id}")
        if row["account_id"] is None:
            raise AccessDenied(
                f"template {template_id} is a public template: it cannot be {what}; copy it"
            )
        return row
