"""Messages the notifier sends to itself."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class PushDue(BaseModel):
    """Attempt ``attempt`` of webhook push ``push_id`` is due now.

    Published once per (webhook, event) when the event is recorded, and again through a
    retry tier after each failed attempt.
    """

    model_config = ConfigDict(frozen=True)

    push_id: int = Field(description="Row id of the push in the notifier's store.")
    attempt: int = Field(ge=1, description="Attempt number (1-based).")
