"""Every message on the bus, one frozen pydantic class each, grouped by producer.

=====================  ==========================  ==================================
class                  producer                    meaning
=====================  ==========================  ==================================
``OutboundBatches``    ingest                      ``RecipientBatch``es: recipients of a
                                                   request for one domain (ids only)
``EventBatch``         ingest, delivery            facts in messages' lives, published
                                                   once, consumed by events and notifier
``SuppressionChanges`` events                      addresses added to or removed from an
                                                   account's suppression list (to ingest)
``DomainRemoved``      ingest                      a sender domain was deleted: its DKIM
                                                   keys go (to delivery)
``TaskCounts``         events                      delivered and failed counts of sending
                                                   tasks (to ingest, which owns the tasks)
=====================  ==========================  ==================================
"""

from pydantic import BaseModel

from postwire_common.schemas.domains import DomainRemoved
from postwire_common.schemas.events import (
    MNS_EVENT_TYPES,
    DeliveryStatus,
    EventBatch,
    EventType,
    MailEvent,
    SendMethod,
)
from postwire_common.schemas.ingest import (
    DkimKey,
    OutboundBatches,
    Recipient,
    RecipientBatch,
    TlsMode,
)
from postwire_common.schemas.suppressions import (
    SuppressionChange,
    SuppressionChanges,
    SuppressionReason,
)
from postwire_common.schemas.tasks import TaskCount, TaskCounts

# Every class sent on the bus as a whole message; ``postwire_common.asyncapi`` documents
# each, and its test checks that the services publish and subscribe to no other.
BUS_MESSAGES: tuple[type[BaseModel], ...] = (
    OutboundBatches,
    EventBatch,
    SuppressionChanges,
    DomainRemoved,
    TaskCounts,
)

__all__ = [
    "BUS_MESSAGES",
    "MNS_EVENT_TYPES",
    "DeliveryStatus",
    "DkimKey",
    "DomainRemoved",
    "EventBatch",
    "EventType",
    "MailEvent",
    "OutboundBatches",
    "Recipient",
    "RecipientBatch",
    "SendMethod",
    "SuppressionChange",
    "SuppressionChanges",
    "SuppressionReason",
    "TaskCount",
    "TaskCounts",
    "TlsMode",
]
