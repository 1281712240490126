"""Every message on the bus, one frozen pydantic class each, grouped by producer.

=====================  ==========================  ==================================
class                  producer                    meaning
=====================  ==========================  ==================================
``OutboundBatches``    ingest                      ``RecipientBatch``es: recipients of a
                                                   request for one domain (ids only)
``EventBatch``         ingest, delivery            facts in messages' lives, published
                                                   once, consumed by events and notifier
=====================  ==========================  ==================================
"""

from postwire_common.schemas.events import (
    MNS_EVENT_TYPES,
    DeliveryStatus,
    EventBatch,
    EventType,
    MailEvent,
)
from postwire_common.schemas.ingest import OutboundBatches, Recipient, RecipientBatch

__all__ = [
    "MNS_EVENT_TYPES",
    "DeliveryStatus",
    "EventBatch",
    "EventType",
    "MailEvent",
    "OutboundBatches",
    "Recipient",
    "RecipientBatch",
]
