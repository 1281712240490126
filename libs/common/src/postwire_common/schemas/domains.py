"""What ingest tells delivery about sender domains."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class DomainRemoved(BaseModel):
    """An account deleted a sender domain: delivery drops its copies of the domain's DKIM
    keys (those still needed by queued mail once that mail has left)."""

    model_config = ConfigDict(frozen=True)

    tenant_id: str = Field(description="Account (tenant) the domain belonged to.")
    domain: str = Field(description="The domain name, lower case.")
