"""Events in a message's life (API.md, "Events")."""

from __future__ import annotations

from datetime import datetime
from enum import IntEnum, StrEnum

from pydantic import BaseModel, ConfigDict, Field


class EventType(StrEnum):
    REQUEST = "request"
    DELIVERED = "delivered"
    SOFT_BOUNCE = "soft_bounce"
    FAILED = "failed"
    INVALID = "invalid"
    OPEN = "open"
    CLICK = "click"
    UNSUBSCRIBE = "unsubscribe"
    SPAM_REPORT = "spam_report"


MNS_EVENT_TYPES: dict[EventType, str] = {
    EventType.REQUEST: "Deliver:Request",
    EventType.DELIVERED: "Deliver:SendSuccessfully",
    EventType.SOFT_BOUNCE: "Deliver:SoftBounce",
    EventType.FAILED: "Deliver:SendFailed",
    EventType.INVALID: "Deliver:SendFailed",
    EventType.OPEN: "Track:Open",
    EventType.CLICK: "Track:Click",
    EventType.UNSUBSCRIBE: "Track:Unsubscribe",
    EventType.SPAM_REPORT: "Track:SpamReport",
}


class SendMethod(StrEnum):
    """How a message came in (KooMessage's "Send Method" in sending details)."""

    API = "api"
    SMTP = "smtp"
    TASK = "task"


class DeliveryStatus(IntEnum):
    """``status`` of the Aliyun message format."""

    DELIVERED = 0
    INVALID_ADDRESS = 2
    SPAM = 3
    FAILED = 4


class MailEvent(BaseModel):
    """One fact about one recipient's message.

    Producers publish events once, in :class:`EventBatch` messages, to ``postwire.events``;
    the events service (log, status) and the notifier (pushes) consume them in parallel.
    ``event_id`` is deterministic, so a repeated publish never becomes a second event.
    """

    model_config = ConfigDict(frozen=True)

    event_id: str = Field(description="Unique id; the same fact always has the same id.")
    event: EventType = Field(description="What happened.")
    env_id: str = Field(description="The recipient message's id.")
    msg_id: str = Field(description="Message-ID of the mail as sent, with angle brackets.")
    tenant_id: str = Field(description="Account (tenant) the message belongs to.")
    account: str = Field(description="Sender address the mail was sent as (Aliyun 'account').")
    sender: str = Field(description="Envelope and header From address ('from' in pushes).")
    rcpt: str = Field(description="Recipient address.")
    label: str | None = Field(None, description="Label given at send time.")
    subject: str | None = Field(None, description="Subject; set on request events.")
    method: SendMethod | None = Field(
        None, description="How the message came in (api, smtp, task); set on request events."
    )
    template_id: str | None = Field(
        None, description="Template it was made from; set on request events."
    )
    task_id: str | None = Field(None, description="Sending task it belongs to; request events.")
    api_user: str | None = Field(
        None, description="API user that sent it (SendCloud's API_USER); request events."
    )
    status: DeliveryStatus | None = Field(
        None, description="0 delivered, 2 invalid address, 3 spam, 4 failed; null otherwise."
    )
    err_code: int | None = Field(None, description="SMTP reply code of the recipient's server.")
    err_msg: str | None = Field(None, description="SMTP reply text, or why we gave up.")
    url: str | None = Field(None, description="Followed link of a click event.")
    ip: str | None = Field(None, description="Client address of an open, click or unsubscribe.")
    user_agent: str | None = Field(
        None, description="User-Agent of an open, click or unsubscribe (at most 512 chars)."
    )
    machine: str | None = Field(
        None,
        description="Set on opens and clicks that a machine made rather than the recipient: "
        "'privacy_proxy' (a mail privacy proxy fetched the pixel) or 'scanner' (a link "
        "scanner followed it). Such events are counted apart in the statistics.",
    )
    attempt: int = Field(0, description="Delivery attempt the event belongs to (1-based).")
    recv_time: datetime = Field(description="When the message was accepted (UTC).")
    time: datetime = Field(description="When this happened (UTC).")


class EventBatch(BaseModel):
    """Events published together: one request's, or one delivery round's results, and
    under load many of either (outbox relays concatenate batches they publish together)."""

    model_config = ConfigDict(frozen=True)

    events: list[MailEvent] = Field(min_length=1, description="The events, in order.")
