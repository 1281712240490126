"""ingest's composition root.

Process model: one asyncio loop runs the HTTP API (uvicorn, built by
``postwire_common.http.app``), the SMTP submission listeners (``submission``, on
``POSTWIRE_SMTP_PORT`` and ``POSTWIRE_SMTPS_PORT``, both through the same ``Sender`` as
the HTTP API) and the outbox relay task. ingest consumes
``SuppressionChanges`` (its copy of the suppression lists, filtered at accept time) and
``TaskCounts`` (its tasks' delivered and failed counts, counted by events); it
stores each request's content once (``postwire_common.content``) and
publishes ``RecipientBatch`` (ids) to ``postwire.outbound`` and ``EventBatch`` of request
events to ``postwire.events``, only through its outbox. Scale by adding replicas:
relays share the outbox with ``SKIP LOCKED``.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from types import MappingProxyType

from fastapi import APIRouter

from postwire_common.broker import topology
from postwire_common.broker.outbox import OutboxRelay
from postwire_common.config import Settings
from postwire_common.crypto import keyring
from postwire_common.identity import Identity
from postwire_common.partitions import History, Retention
from postwire_common.service import Service
from postwire_ingest import handlers
from postwire_ingest.api import IngestContext, routers
from postwire_ingest.domain_checks import DomainChecker
from postwire_ingest.label_store import LabelStore
from postwire_ingest.labels import Labels
from postwire_ingest.limits import (
    MAX_REQUEST_BYTES,
    MAX_TASK_ATTACHMENT_REQUEST_BYTES,
    MAX_TASK_REQUEST_BYTES,
    MAX_TEMPLATE_REQUEST_BYTES,
)
from postwire_ingest.receiver_store import ReceiverStore
from postwire_ingest.sending import Sender
from postwire_ingest.store import OUTBOX_TABLE, IngestStore
from postwire_ingest.submission import server as submission
from postwire_ingest.submission.tls import server_context
from postwire_ingest.task_attachment_store import TaskAttachmentStore
from postwire_ingest.task_store import TaskStore
from postwire_ingest.tasks import TaskRunner
from postwire_ingest.template_review_store import TemplateReviewStore
from postwire_ingest.template_store import TemplateStore
from postwire_ingest.templates import TEMPLATE_CONTENT_ROUTES
from postwire_ingest.tls_policies import TlsPolicies
from postwire_ingest.tls_policy_store import TlsPolicyStore
from postwire_ingest.vendors import aliyun, devino, sendcloud, tencent


class IngestService(Service):
    name = "ingest"
    consumes = (topology.INGEST_SUPPRESSIONS.queue.name, topology.INGEST_TASK_COUNTS.queue.name)
    body_limits = MappingProxyType(
        {
            ("POST", "/v1/messages"): MAX_REQUEST_BYTES,
            ("POST", "/v1/tasks"): MAX_TASK_REQUEST_BYTES,
            ("POST", "/v1/tasks/{task_id}/attachments"): MAX_TASK_ATTACHMENT_REQUEST_BYTES,
            **dict.fromkeys(TEMPLATE_CONTENT_ROUTES, MAX_TEMPLATE_REQUEST_BYTES),
            **dict.fromkeys(sendcloud.ROUTES, MAX_REQUEST_BYTES),
            **devino.BODY_LIMITS,
            ("POST", ""): MAX_REQUEST_BYTES,  # the vendors' RPC actions, sending among them
        }
    )

    def __init__(self, settings: Settings) -> None:
        super().__init__(settings)
        self.store = IngestStore(self.pool, keyring(settings))
        self.relay = OutboxRelay(
            self.pool,
            self.broker,
            OUTBOX_TABLE,
            batch=settings.outbox_batch,
            linger=settings.outbox_linger,
        )
        tls = TlsPolicies(TlsPolicyStore(self.pool))
        labels = Labels(LabelStore(self.pool))
        sender = Sender(self.store, self.relay.wake, tls.rules, labels.ensure, settings.public_url)
        self.submission = submission.Submission(
            sender,
            Identity(self.pool),
            self.pool,
            settings.helo_name,
            timeout=settings.smtp_timeout,
            per_ip=settings.smtp_connections_per_ip,
        )
        self._listeners: list[asyncio.Server] = []
        self.domains = DomainChecker(settings, self.store, sender.forget_senders)
        templates = TemplateStore(self.pool)
        context = IngestContext(
            settings,
            self.store,
            sender,
            self.domains,
            tls,
            labels,
            templates,
            TemplateReviewStore(self.pool),
            TaskStore(self.pool),
            TaskAttachmentStore(self.pool),
        )
        self.tasks = TaskRunner(
            context.tasks, templates, sender, self.store, context.task_attachments.for_task
        )
        self._routers = [*routers(context), devino.router(context), sendcloud.router(context)]
        self.actions = [
            *aliyun.actions(context, ReceiverStore(self.pool)),
            *tencent.actions(context),
        ]
        handlers.register(self.broker, self.store, context.tasks)
        self.retention = Retention(
            self.pool, [History("ingest.idempotency_keys", settings.idempotency_retention)]
        )

    @property
    def routers(self) -> Sequence[APIRouter]:
        return self._routers

    async def on_start(self) -> None:
        await self.store.rewrite_dkim_keys(rotate=False)  # rows stored before encryption
        await self.retention.run_once()  # today's partitions exist before keys are claimed
        self.spawn(self.retention.run(), "retention")
        self.spawn(self.domains.run(), "domain re-checks")
        self.spawn(self.tasks.run(), "tasks")
        self.relay.start()
        await self._listen()

    async def _listen(self) -> None:
        """The SMTP submission listeners: STARTTLS and implicit TLS, each when its port is
        set."""
        settings = self.settings
        ports = [(settings.smtp_port, False), (settings.smtps_port, True)]
        if not any(port for port, _ in ports):
            return
        context = server_context(settings, settings.helo_name)
        for port, implicit in ports:
            if port:
                self._listeners.append(
                    await submission.serve(
                        self.submission, settings.http_host, port, context,
                        implicit_tls=implicit, auth_require_tls=settings.smtp_auth_require_tls,
                    )
                )  # fmt: skip

    async def stop(self) -> None:
        for listener in self._listeners:
            listener.close()  # no new sessions; those in flight finish their DATA

        # The relay goes first, while the broker connection it publishes on is still up;
        # what it has not published stays in the outbox for the next process.
        await self.relay.stop()
        await super().stop()
