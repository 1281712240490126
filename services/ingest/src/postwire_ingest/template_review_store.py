"""The operator's statements on templates: sensitive accounts, public templates, and
the review (approve or reject) of accounts' templates. The SQL of templates is here and
in ``template_store.py``, nowhere else."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

import asyncpg

from postwire_common.errors import NotAvailable, NotFound
from postwire_ingest.template_store import ANY_TEMPLATE, insert_template, template_from_row
from postwire_ingest.templates import Draft, Status, Template, TemplateType

# Accounts' templates for the operator, oldest first, with their account's name.
_REVIEWABLE = """
SELECT a.name AS account, t.id, t.account_id, t.name, t.type, t.status, t.reject_reason,
    t.version, v.subject, v.unsubscribe, v.params, t.created_at, t.updated_at
FROM ingest.templates t JOIN ingest.template_versions v
    ON v.template_id = t.id AND v.version = t.version
JOIN ingest.accounts a ON a.id = t.account_id
WHERE ($1::text IS NULL OR t.status = $1) AND ($2::text IS NULL OR a.name = $2)
    AND ($3::timestamptz IS NULL OR (t.created_at, t.id) > ($3, $4::text))
ORDER BY t.created_at, t.id LIMIT $5
"""


class TemplateReviewStore:
    def __init__(self, pool: asyncpg.Pool) -> None:
        self.pool = pool

    async def get(self, template_id: str, version: int | None = None) -> Template:
        """Any account's template (or a public one), to review it."""
        row = await self.pool.fetchrow(ANY_TEMPLATE, template_id, version)
        if row is None:
            at = "" if version is None else f" with a version {version}"
            raise NotFound(f"no template {template_id}{at}")
        return template_from_row(row)

    async def set_sensitive(self, account_name: str, sensitive: bool) -> dict[str, Any]:
        """Flag an account as in a sensitive industry (its templates wait for approval)
        or not. Templates it has keep their status."""
        row = await self.pool.fetchrow(
            "UPDATE ingest.accounts SET sensitive = $2 WHERE name = $1 "
            "RETURNING name AS account, sensitive",
            account_name,
            sensitive,
        )
        if row is None:
            raise NotFound(f"no account {account_name!r}")
        return dict(row)

    async def publish(self, draft: Draft, kind: TemplateType, params: Sequence[str]) -> Template:
        """A public template: every account sees it, may send and copy it."""
        async with self.pool.acquire() as conn, conn.transaction():
            return await insert_template(conn, None, draft, kind, params, Status.APPROVED)

    async def delete_public(self, template_id: str) -> None:
        deleted = await self.pool.fetchval(
            "DELETE FROM ingest.templates WHERE id = $1 AND account_id IS NULL RETURNING id",
            template_id,
        )
        if deleted is None:
            raise NotFound(f"no public template {template_id}")

    async def review(self, template_id: str, status: Status, reason: str | None) -> bool:
        """Approve (``reason`` None) or reject an account's template; whether anything
        changed (approving an approved template changes nothing)."""
        async with self.pool.acquire() as conn, conn.transaction():
            row = await conn.fetchrow(
                "SELECT account_id, status, reject_reason FROM ingest.templates "
                "WHERE id = $1 FOR UPDATE",
                template_id,
            )
            if row is None:
                raise NotFound(f"no template {template_id}")
            if row["account_id"] is None:
                raise NotAvailable("a public template is always approved")
            if (row["status"], row["reject_reason"]) == (status.value, reason):
                return False
            await conn.execute(
                "UPDATE ingest.templates SET status = $2, reject_reason = $3, "
                "updated_at = now() WHERE id = $1",
                template_id,
                status.value,
                reason,
            )
        return True

    async def reviewable(
        self,
        status: Status | None,
        account_name: str | None,
        limit: int,
        after: tuple[datetime, str] | None,
    ) -> list[dict[str, Any]]:
        """Accounts' templates for the operator, oldest first (``approving`` ones are a
        queue), with their account's name."""
        rows = await self.pool.fetch(
            _REVIEWABLE,
            status.value if status else None,
            account_name,
            after[0] if after else None,
            after[1] if after else None,
            limit,
        )
        return [dict(r) for r in rows]
