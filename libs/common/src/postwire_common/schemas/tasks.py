"""Batch sending tasks' counts: ingest owns the tasks, the events service knows how their
messages ended, and tells ingest."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field


class TaskCount(BaseModel):
    model_config = ConfigDict(frozen=True)

    tenant_id: str = Field(description="Account (tenant) the task belongs to.")
    task_id: str = Field(description="The sending task.")
    delivered: int = Field(ge=0, description="Its messages whose status is delivered.")
    failed: int = Field(
        ge=0,
        description="Its messages whose status is failed or invalid (delivery gave up); "
        "a bounce after delivery moves a message from delivered to failed.",
    )
    time: datetime = Field(
        description="When these figures were counted, later for every change of one task; "
        "figures with an older time never override newer ones."
    )


class TaskCounts(BaseModel):
    """The bus message on ``postwire.tasks``: the current delivered and failed counts of
    tasks whose counts changed (absolute figures, so repeats and order do not matter)."""

    model_config = ConfigDict(frozen=True)

    counts: list[TaskCount] = Field(min_length=1, description="One per task.")
