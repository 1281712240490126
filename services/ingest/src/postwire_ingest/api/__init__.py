"""ingest's HTTP routes, one module per resource."""

from fastapi import APIRouter

from postwire_ingest.api import (
    admin,
    api_users,
    domains,
    labels,
    messages,
    senders,
    task_attachments,
    tasks,
    templates,
    tls_policies,
)
from postwire_ingest.api.context import IngestContext


def routers(context: IngestContext) -> list[APIRouter]:
    return [
        admin.router(context),
        api_users.router(context),
        domains.router(context),
        senders.router(context),
        tls_policies.router(context),
        labels.router(context),
        templates.router(context),
        messages.router(context),
        tasks.router(context),
        task_attachments.router(context),
    ]


__all__ = ["IngestContext", "routers"]
