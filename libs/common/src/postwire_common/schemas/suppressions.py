"""Suppression changes: the events service owns each account's suppression list and tells
ingest, which filters suppressed recipients at accept time."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from pydantic import BaseModel, ConfigDict, Field


class SuppressionReason(StrEnum):
    HARD_BOUNCE = "hard_bounce"
    COMPLAINT = "complaint"
    UNSUBSCRIBE = "unsubscribe"
    MANUAL = "manual"


class SuppressionChange(BaseModel):
    model_config = ConfigDict(frozen=True)

    tenant_id: str = Field(description="The account whose list changed.")
    address: str = Field(description="The address, lower-cased.")
    suppressed: bool = Field(description="True: added to the list; false: removed from it.")
    reason: SuppressionReason | None = Field(None, description="Why it was added.")
    time: datetime = Field(
        description="When it changed; an older change never overrides a newer one."
    )


class SuppressionChanges(BaseModel):
    """The bus message on ``postwire.suppressions``: changes to suppression lists."""

    model_config = ConfigDict(frozen=True)

    changes: list[SuppressionChange] = Field(min_length=1, description="The changes, in order.")
