"""The services this command can run and the schemas it migrates, in start order."""

from __future__ import annotations

from postwire_common.migrations import MigrationSet
from postwire_common.service import Service
from postwire_delivery.app import DeliveryService
from postwire_events.app import EventsService
from postwire_ingest.app import IngestService
from postwire_notifier.app import NotifierService

SERVICES: dict[str, type[Service]] = {
    # Consumers first, so their queues exist before ingest accepts anything.
    "events": EventsService,
    "notifier": NotifierService,
    "delivery": DeliveryService,
    "ingest": IngestService,
}

MIGRATIONS: tuple[MigrationSet, ...] = tuple(
    MigrationSet(name, f"postwire_{name}:migrations")
    for name in ("ingest", "delivery", "events", "notifier")
)
