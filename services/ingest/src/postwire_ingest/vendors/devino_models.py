"""Devino's request bodies and answers, in its names over postwire's (``devino.py``)."""

from __future__ import annotations

import re
from collections.abc import Mapping
from email.utils import formataddr
from typing import Any, ClassVar

from pydantic import ConfigDict, Field, model_validator

from postwire_common.addresses import parse_mailbox
from postwire_common.errors import (
    NotAvailable,
)
from postwire_common.http.models import RequestModel
from postwire_common.instants import Instant
from postwire_ingest.limits import (
    MAX_ATTACHMENTS,
    MAX_RECIPIENTS,
)
from postwire_ingest.tasks import MAX_TYPED_RECIPIENTS

# --- requests: Devino's names over postwire's ------------------------------------------


class DevinoModel(RequestModel):
    """A body in Devino's names. A Devino field postwire has no counterpart for answers
    ``not_available`` naming it (never ignored); any other unknown field ``invalid_value``."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=False)
    unavailable: ClassVar[Mapping[str, str]] = {}

    @model_validator(mode="before")
    @classmethod
    def _unavailable(cls, data: Any) -> Any:
        if isinstance(data, dict):
            for name, why in cls.unavailable.items():
                if name in data:
                    raise NotAvailable(f"{name} is not available in postwire: {why}")
        return data


class DevinoMailbox(DevinoModel):
    address: str = Field(alias="Address", max_length=320, description="Email address.")
    name: str | None = Field(None, alias="Name", max_length=150, description="Display name.")

    def value(self) -> str:
        return formataddr((self.name, self.address)) if self.name else self.address


class DevinoRecipient(DevinoMailbox):
    unavailable: ClassVar[Mapping[str, str]] = {
        "ExtraData": "events carry env_id; keep your own data by env_id (webhooks push it)",
    }
    merge_fields: dict[str, str] = Field(
        default_factory=dict, alias="MergeFields", description="Values of {{macros}}."
    )


class DevinoBody(DevinoModel):
    html: str | None = Field(None, alias="Html", max_length=10_000_000)
    plain_text: str | None = Field(None, alias="PlainText", max_length=10_000_000)


class DevinoAttachment(DevinoModel):
    name: str = Field(alias="Name", max_length=255, description="File name.")
    content: str = Field(alias="Content", description="Base64 of the file.")
    content_type: str | None = Field(None, alias="ContentType", description="MIME type.")


class DevinoMessage(DevinoModel):
    """``POST /Messages``: one message per recipient, sent now."""

    unavailable: ClassVar[Mapping[str, str]] = {
        "AttachmentsIds": "there is no file store; send the files as Attachments "
        "[{Name, Content (base64), ContentType}]",
    }
    sender: DevinoMailbox = Field(alias="Sender", description="A sender address of yours.")
    recipients: list[DevinoRecipient] = Field(
        alias="Recipients", min_length=1, max_length=MAX_RECIPIENTS
    )
    subject: str = Field(alias="Subject", max_length=998)
    body: DevinoBody = Field(alias="Body")
    attachments: list[DevinoAttachment] = Field(
        default_factory=list, alias="Attachments", max_length=MAX_ATTACHMENTS
    )
    check_unsubscription: bool = Field(
        True,
        alias="CheckUnsubscription",
        description="Always true in postwire: suppressed addresses are never sent to.",
    )


class DevinoTask(DevinoModel):
    """``POST /Tasks``: a mailing to typed-in recipients, now or at StartDateTime."""

    unavailable: ClassVar[Mapping[str, str]] = {
        "ContactGroups": "there are no address books; give the addresses as Recipients",
        "ContactGroupIds": "there are no address books; give the addresses as Recipients",
        "SegmentIds": "there are no segments; give the addresses as Recipients",
        "EndDateTime": "a task sends until it is done (or cancelled)",
        "UseLocalTime": "StartDateTime is one instant for every recipient",
        "UnsubscribeCategoryId": "unsubscribes are per account (suppressions)",
    }
    name: str = Field(alias="Name", min_length=1, max_length=64)
    sender: DevinoMailbox = Field(alias="Sender")
    subject: str | None = Field(None, alias="Subject", min_length=1, max_length=256)
    body: DevinoBody | None = Field(None, alias="Body")
    template_id: str | None = Field(
        None, alias="TemplateId", max_length=64, description="postwire: instead of Body."
    )
    recipients: list[DevinoRecipient] = Field(
        alias="Recipients", min_length=1, max_length=MAX_TYPED_RECIPIENTS
    )
    start_date_time: Instant | None = Field(None, alias="StartDateTime")


class DevinoTaskState(DevinoModel):
    state: str = Field(alias="State", max_length=32, description="Only Cancelled.")


# --- answers and error texts in Devino's names -----------------------------------------

# A domain error's description starts with the /v1 field it is about.
_FIELDS = {
    "from": "Sender.Address",
    "recipient": "Recipients.Address",
    "recipients": "Recipients",
    "send_at": "StartDateTime",
    "subject": "Subject",
    "text or html": "Body.PlainText or Body.Html",
    "text": "Body.PlainText",
    "html": "Body.Html",
    "name": "Name",
    "template_id": "TemplateId",
    "file": "file",
}
_LEADING_FIELD = re.compile(
    r"^(" + "|".join(sorted(map(re.escape, _FIELDS), key=len, reverse=True)) + r")\b(?=[:. ])"
)


def devino_text(description: str) -> str:
    """A domain error's description with its leading /v1 field named as Devino names it."""
    return _LEADING_FIELD.sub(lambda m: _FIELDS[m.group(1)], description, count=1)


STATES = {
    "preparing": "Preparing",
    "scheduled": "Scheduled",
    "sending": "Sending",
    "completed": "Completed",
    "failed": "Failed",
    "cancelled": "Cancelled",
}


def task_result(task: Mapping[str, Any], subject: str | None) -> dict[str, Any]:
    """A /v1 task row in Devino's shape."""
    sender = parse_mailbox(task["sender"], field="Sender")
    return {
        "Id": task["id"],
        "Name": task["name"],
        "Sender": {"Address": sender.address, "Name": sender.name or None},
        "Subject": subject,
        "TemplateId": task["template_id"],
        "StartDateTime": task["send_at"],
        "State": STATES.get(task["state"], task["state"]),
        "Statistics": {
            "Total": task["total"],
            "Invalid": task["invalid"],
            "Queued": task["queued"],
            "Suppressed": task["suppressed"],
            "Delivered": task["delivered"],
            "Failed": task["failed"],
        },
        "InvalidRecipients": [
            {"Row": r["row"], "Address": r["address"], "Reason": r["reason"]}
            for r in task.get("invalid_rows", ())
        ],
        "Error": task["error"],
        "CreatedDateTime": task["created_at"],
        "StartedDateTime": task["started_at"],
        "FinishedDateTime": task["finished_at"],
    }


def attachment_result(row: Mapping[str, Any]) -> dict[str, Any]:
    return {
        "Id": row["id"],
        "Name": row["filename"],
        "ContentType": row["content_type"],
        "Size": row["size"],
        "CreatedDateTime": row["created_at"],
    }
