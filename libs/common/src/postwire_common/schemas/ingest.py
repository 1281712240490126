"""Messages ingest puts on the bus (besides request events)."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field


class OutboundMessage(BaseModel):
    """One recipient's mail, ready to deliver.

    ``raw`` is the complete RFC 5322 message, 7-bit clean with CRLF line ends, so delivery
    sends it byte for byte (DKIM signing will prepend a header). Delivery republishes it
    with ``attempt`` increased to retry after a soft bounce.
    """

    model_config = ConfigDict(frozen=True)

    env_id: str = Field(description="The recipient message's id.")
    msg_id: str = Field(description="Message-ID header value, with angle brackets.")
    tenant_id: str = Field(description="Account (tenant) the message belongs to.")
    sender: str = Field(description="From address; also MAIL FROM unless VERP applies.")
    rcpt: str = Field(description="The one recipient (RCPT TO).")
    label: str | None = Field(None, description="Label given at send time.")
    raw: str = Field(description="The message, 7-bit, CRLF line ends.")
    recv_time: datetime = Field(description="When ingest accepted the message (UTC).")
    attempt: int = Field(1, ge=1, description="Delivery attempt this copy is for (1-based).")
