"""What ingest's routes need, handed to each router factory."""

from __future__ import annotations

from dataclasses import dataclass

from postwire_common.config import Settings
from postwire_ingest.domain_checks import DomainChecker
from postwire_ingest.labels import Labels
from postwire_ingest.sending import Sender
from postwire_ingest.store import IngestStore
from postwire_ingest.task_attachment_store import TaskAttachmentStore
from postwire_ingest.task_store import TaskStore
from postwire_ingest.template_review_store import TemplateReviewStore
from postwire_ingest.template_store import TemplateStore
from postwire_ingest.tls_policies import TlsPolicies


@dataclass(frozen=True)
class IngestContext:
    settings: Settings
    store: IngestStore
    sender: Sender
    domains: DomainChecker
    tls: TlsPolicies
    labels: Labels
    templates: TemplateStore
    template_reviews: TemplateReviewStore
    tasks: TaskStore
    task_attachments: TaskAttachmentStore
