"""Batch sending tasks: checked when made (``api/tasks.py``), prepared and started by a
runner that every ingest process has.

::

    POST /v1/tasks, typed in ──▶ rows checked (bad and duplicate rows reported, not
                                 fatal), missing_macros refuses the task ──▶ scheduled
    POST /v1/tasks, a file   ──▶ header checked (missing_macros), the file stored in parts
                             ──▶ preparing
    runner, every second: claim one preparing task (SKIP LOCKED) ──▶ its file read row by
                          row in a worker thread, checked, stored 2,000 rows a batch
                          ──▶ scheduled (or failed, saying why)
                        claim one due task (one UPDATE: exactly once) ──▶ its rows in
                          order through the same send path as POST /v1/messages, 100 a
                          request, under the idempotency key task:<id>:<first row>,
                          recording the last row sent ──▶ completed (or failed)

A runner that dies leaves its lease to run out (it is extended with every batch). The
next one expands a file again from the start, or sends from the last row recorded; a
batch sent but not recorded goes again under the same key, which answers what was
accepted the first time.
"""

from __future__ import annotations

import asyncio
import contextlib
import csv
import hashlib
import io
import logging
import tempfile
import uuid
from collections.abc import Awaitable, Callable, Iterator, Mapping, Sequence
from dataclasses import replace
from typing import Any

from postwire_common.addresses import parse_mailbox
from postwire_common.errors import InvalidEmail, InvalidValue, PostwireError
from postwire_common.identity import Principal
from postwire_common.infra import is_infrastructure
from postwire_common.schemas import SendMethod
from postwire_ingest.compose import Attachment, Content
from postwire_ingest.limits import MAX_RECIPIENTS, MAX_TASK_ROWS
from postwire_ingest.sending import SendCommand, Sender
from postwire_ingest.store import IngestStore
from postwire_ingest.task_files import FileFormat, Header, RowError, check_row, read_header, rows
from postwire_ingest.task_store import TaskStore
from postwire_ingest.template_store import TemplateStore
from postwire_ingest.templates import Status, Template, used_params

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


def sample_xlsx(params: Sequence[str]) -> bytes:
    """The same sample as an XLSX workbook, for spreadsheet users."""
    from openpyxl import Workbook

    book = Workbook(write_only=True)
    sheet = book.create_sheet("recipients")
    sheet.append(["address", *params])
    sheet.append(["someone@example.com", *(f"<{name}>" for name in params)])
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


class TaskRunner:
    """Expands uploaded tasks and starts due ones; one per ingest process."""

    def __init__(
        self,
        tasks: TaskStore,
        templates: TemplateStore,
        sender: Sender,
        store: IngestStore,
        attachments: Callable[[str], Awaitable[tuple[Attachment, ...]]] | None = None,
        *,
        interval: float = 1.0,
    ) -> None:
        self._tasks = tasks
        self._templates = templates
        self._sender = sender
        self._store = store
        self._attachments = attachments
        self._interval = interval
        self._owner = f"ingest-{uuid.uuid4().hex[:12]}"
        self._current: str | None = None  # the task this runner holds a lease on

    async def run(self) -> None:
        try:
            while True:
                try:
                    if await self.run_once():
                        continue  # another may be waiting
                except Exception as exc:
                    if not is_infrastructure(exc):
                        log.exception("task runner round failed")
                    else:
                        log.warning(
                            "task runner waits for the database", extra={"error": repr(exc)}
                        )
                await asyncio.sleep(self._interval)
        finally:
            if self._current is not None:  # stopped mid-task (a deploy, SIGTERM)
                with contextlib.suppress(Exception):
                    await asyncio.wait_for(self._tasks.release(self._current, self._owner), 2)

    async def run_once(self) -> bool:
        """Expand one uploaded task, or send one due task; whether there was one."""
        return await self.prepare_once() or await self.send_once()

    # --- preparing --------------------------------------------------------------------

    async def prepare_once(self) -> bool:
        task = await self._tasks.claim_preparing(self._owner, LEASE_SECONDS)
        if task is None:
            return False
        self._current = task["id"]
        try:
            await self._prepare(task)
        finally:
            self._current = None
        return True

    async def _prepare(self, task: Mapping[str, Any]) -> None:
        log.info("task file expanding", extra={"task_id": task["id"], "size": task["file_size"]})
        error = None
        try:
            if not await self._expand(task):
                log.info("task no longer being prepared here", extra={"task_id": task["id"]})
                return
        except (PostwireError, RowError) as exc:
            error = exc.description if isinstance(exc, PostwireError) else str(exc)
        except Exception as exc:
            if is_infrastructure(exc):
                raise  # the lease runs out and a runner tries again
            # A file that breaks the reader in a way it does not name would otherwise be
            # retried forever: it fails the task instead.
            log.exception("task file unreadable", extra={"task_id": task["id"]})
            error = f"file: not readable ({type(exc).__name__})"
        await self._tasks.prepared(task["id"], self._owner, error=error)
        log.info("task file expanded", extra={"task_id": task["id"], "error": error})

    async def _expand(self, task: Mapping[str, Any]) -> bool:
        """The file's rows into the task, a batch at a time; False when the task stopped
        being ours (cancelled). Reading runs in a worker thread, a batch per call, so
        the event loop keeps serving requests."""
        template = await self._template(task)
        fmt = FileFormat(task["file_format"])
        with tempfile.TemporaryFile() as file:
            await self._tasks.copy_file(task["id"], file)
            file.seek(0)
            reader = rows(file, fmt)
            try:
                header_row = await asyncio.to_thread(next, reader, None)
                if header_row is None:
                    raise InvalidValue("file: empty (the first row is the header)")
                header = read_header(header_row[1], used_params(template))
                valid = 0
                while True:
                    batch = await asyncio.to_thread(_checked_batch, reader, header, template)
                    if batch is None:
                        break
                    recipients, invalid = batch
                    valid += len(recipients)
                    if not await self._tasks.add_rows(
                        task["id"], self._owner, recipients, invalid, LEASE_SECONDS
                    ):
                        return False
            finally:
                reader.close()
        if not valid:
            raise InvalidValue("file: no row with a valid address (see invalid_rows)")
        return True

    # --- sending ----------------------------------------------------------------------

    async def send_once(self) -> bool:
        task = await self._tasks.claim(self._owner, LEASE_SECONDS)
        if task is None:
            return False
        self._current = task["id"]
        try:
            await self._run_task(task)
        finally:
            self._current = None
        return True

    async def _run_task(self, task: Mapping[str, Any]) -> None:
        log.info("task started", extra={"task_id": task["id"], "account": task["account_id"]})
        error = None
        try:
            if not await self._send(task):
                log.warning("task lease lost while sending", extra={"task_id": task["id"]})
                return
        except PostwireError as exc:  # the sender or template changed since: say why
            error = exc.description
        await self._tasks.finish(task["id"], self._owner, error=error)
        log.info("task finished", extra={"task_id": task["id"], "error": error})

    async def _send(self, task: Mapping[str, Any]) -> bool:
        """Every row after ``sent_through``, a batch a request; False when the lease was
        lost. A batch is keyed by its first row, so a runner taking over mid-task and
        sending it again gets the first answer back instead of a second message."""
        account_id = task["account_id"]
        template = await self._template(task)
        attachments = await self._attachments(task["id"]) if self._attachments else ()
        principal = Principal(
            account_id,
            await self._store.account_name(account_id),
            task["api_user"],
            task["user_type"],
        )
        through = task["sent_through"]
        while batch := await self._tasks.next_rows(task["id"], through, MAX_RECIPIENTS):
            key = f"task:{task['id']}:{batch[0]['row']}"
            command = SendCommand(
                sender=task["sender"],
                to=[r["address"] for r in batch],
                content=Content(subject="", attachments=attachments),
                label=task["label"],
                idempotency_key=key,
                fingerprint=hashlib.sha256(key.encode()).digest(),
                method=SendMethod.TASK,
                template=template,
                template_id=template.id,
                unsubscribe=template.unsubscribe,
                task_id=task["id"],
                recipient_variables={r["address"].lower(): r["variables"] for r in batch},
            )
            counts = {"queued": 0, "suppressed": 0}
            for message in await self._sender.send(principal, command):
                counts[message["status"]] += 1
            through = batch[-1]["row"]
            if not await self._tasks.sent(
                task["id"], self._owner, through=through, lease=LEASE_SECONDS, **counts
            ):
                return False
        return True

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


ROWS_PER_BATCH = 2000  # rows read, checked and stored together while expanding


def _checked_batch(
    reader: Iterator[tuple[int, list[str]]], header: Header, template: Template
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]] | None:
    """The next rows of the file, checked; None at its end."""
    recipients: list[dict[str, Any]] = []
    invalid: list[dict[str, Any]] = []
    read = 0
    for number, cells in reader:
        if number > MAX_TASK_ROWS + 1:
            raise RowError(number, f"a task has at most {MAX_TASK_ROWS} recipient rows")
        good, bad = check_row(number, cells, header, template)
        if good is not None:
            recipients.append(good)
        elif bad is not None:
            invalid.append(bad)
        read += 1
        if read == ROWS_PER_BATCH:
            break
    return (recipients, invalid) if read else None
