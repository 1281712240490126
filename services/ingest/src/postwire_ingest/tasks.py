"""Batch sending tasks: checked when made (``api/tasks.py``), started by a runner that
every ingest process has.

::

    POST /v1/tasks ──▶ recipients checked (bad and duplicate rows reported, not fatal),
                      the template rendered for each (missing_macros refuses the task)
                   ──▶ scheduled, send_at (now when absent)
    runner, every second: claim one due task (SKIP LOCKED, one UPDATE: exactly once)
                   ──▶ its recipients through the same send path as POST /v1/messages,
                      100 a request, each under the idempotency key task:<id>:<n>
                   ──▶ completed with its counts (or failed, saying why)

A runner that dies mid-task leaves its lease to run out; the next one sends the batches
again under the same keys, which answer what was accepted the first time.
"""

from __future__ import annotations

import asyncio
import csv
import hashlib
import io
import json
import logging
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import replace
from typing import Any

from postwire_common.addresses import parse_mailbox
from postwire_common.errors import InvalidEmail, InvalidValue, PostwireError
from postwire_common.identity import Principal
from postwire_common.infra import is_infrastructure
from postwire_common.schemas import SendMethod
from postwire_ingest.compose import Content
from postwire_ingest.limits import MAX_RECIPIENTS
from postwire_ingest.sending import SendCommand, Sender
from postwire_ingest.store import IngestStore
from postwire_ingest.task_store import TaskStore
from postwire_ingest.template_store import TemplateStore
from postwire_ingest.templates import Status, Template

log = logging.getLogger("postwire.ingest.tasks")

MAX_TYPED_RECIPIENTS = 10  # KooMessage: "A maximum of 10 email addresses can be entered"
LEASE_SECONDS = 60.0


def typed_recipients(
    given: Sequence[tuple[str, Mapping[str, str]]],
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """(valid, invalid) rows, numbered from 1: an address that does not parse, or one
    given before (in any case), is reported with its row and why, and not sent to."""
    valid: list[dict[str, Any]] = []
    invalid: list[dict[str, Any]] = []
    first: dict[str, int] = {}
    for row, (address, variables) in enumerate(given, start=1):
        try:
            parsed = parse_mailbox(address, field="recipient").address
        except (InvalidValue, InvalidEmail) as exc:
            invalid.append({"row": row, "address": address[:320], "reason": exc.description})
            continue
        seen = first.setdefault(parsed.lower(), row)
        if seen != row:
            invalid.append({"row": row, "address": parsed, "reason": f"duplicate of row {seen}"})
            continue
        valid.append({"row": row, "address": parsed, "variables": dict(variables)})
    return valid, invalid


def sample_csv(params: Sequence[str]) -> str:
    """A recipients file for a template: ``address`` and a column per parameter, then an
    example row (CRLF line ends, as RFC 4180 writes them)."""
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(["address", *params])
    writer.writerow(["someone@example.com", *(f"<{name}>" for name in params)])
    return out.getvalue()


class TaskRunner:
    """Starts due tasks and sends them; one per ingest process."""

    def __init__(
        self,
        tasks: TaskStore,
        templates: TemplateStore,
        sender: Sender,
        store: IngestStore,
        *,
        interval: float = 1.0,
    ) -> None:
        self._tasks = tasks
        self._templates = templates
        self._sender = sender
        self._store = store
        self._interval = interval
        self._owner = f"ingest-{uuid.uuid4().hex[:12]}"

    async def run(self) -> None:
        while True:
            try:
                if await self.run_once():
                    continue  # another may be due
            except Exception as exc:
                if not is_infrastructure(exc):
                    log.exception("task runner round failed")
                else:
                    log.warning("task runner waits for the database", extra={"error": repr(exc)})
            await asyncio.sleep(self._interval)

    async def run_once(self) -> bool:
        """Start and send one due task; whether there was one."""
        task = await self._tasks.claim(self._owner, LEASE_SECONDS)
        if task is None:
            return False
        log.info("task started", extra={"task_id": task["id"], "account": task["account_id"]})
        queued = suppressed = 0
        error = None
        try:
            queued, suppressed = await self._send(task)
        except PostwireError as exc:  # the sender or template changed since: say why
            error = exc.description
        await self._tasks.finish(
            task["id"], self._owner, queued=queued, suppressed=suppressed, error=error
        )
        log.info(
            "task finished",
            extra={"task_id": task["id"], "queued": queued, "suppressed": suppressed,
                   "error": error},
        )  # fmt: skip
        return True

    async def _send(self, task: Mapping[str, Any]) -> tuple[int, int]:
        account_id = task["account_id"]
        template = await self._template(task)
        principal = Principal(
            account_id,
            await self._store.account_name(account_id),
            task["api_user"],
            task["user_type"],
        )
        rows = json.loads(task["recipients"])
        counts = {"queued": 0, "suppressed": 0}
        for n, start in enumerate(range(0, len(rows), MAX_RECIPIENTS)):
            batch = rows[start : start + MAX_RECIPIENTS]
            key = f"task:{task['id']}:{n}"
            command = SendCommand(
                sender=task["sender"],
                to=[r["address"] for r in batch],
                content=Content(subject=""),
                label=task["label"],
                idempotency_key=key,
                fingerprint=hashlib.sha256(key.encode()).digest(),
                method=SendMethod.TASK,
                template=template,
                template_id=template.id,
                task_id=task["id"],
                recipient_variables={r["address"].lower(): r["variables"] for r in batch},
            )
            for message in await self._sender.send(principal, command):
                counts[message["status"]] += 1
        return counts["queued"], counts["suppressed"]

    async def _template(self, task: Mapping[str, Any]) -> Template:
        """The version the task was made with (its subject replaced when the task gives
        one); still approved, or the task fails saying so."""
        template = await self._templates.get(
            task["account_id"], task["template_id"], task["template_version"]
        )
        if template.status is not Status.APPROVED:
            raise InvalidValue(f"template {template.id} is {template.status.value}")
        if task["subject"]:
            template = replace(template, subject=task["subject"])
        return template
