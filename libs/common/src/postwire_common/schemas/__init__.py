"""Every message on the bus, one frozen pydantic class each, grouped by producer.

=====================  ==========================  ==================================
class                  producer                    meaning
=====================  ==========================  ==================================
``OutboundMessage``    ingest (and delivery, for   one recipient's mail to deliver
                       retries)
``MailEvent``          ingest, delivery (raw);     a fact in a message's life
                       events (recorded)
``PushDue``            notifier                    a webhook push attempt is due
=====================  ==========================  ==================================
"""

from postwire_common.schemas.events import MNS_EVENT_TYPES, DeliveryStatus, EventType, MailEvent
from postwire_common.schemas.ingest import OutboundMessage
from postwire_common.schemas.notifier import PushDue

__all__ = [
    "MNS_EVENT_TYPES",
    "DeliveryStatus",
    "EventType",
    "MailEvent",
    "OutboundMessage",
    "PushDue",
]
