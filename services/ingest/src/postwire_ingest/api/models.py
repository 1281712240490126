"""Request bodies of ingest's routes (responses are plain envelope results)."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import ConfigDict, Field, StringConstraints

from postwire_common.http.models import RequestModel
from postwire_common.schemas import TlsMode

Text = Annotated[str, StringConstraints(max_length=10_000_000)]


class Strict(RequestModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class CreateAccount(Strict):
    name: str = Field(description="Account (tenant) name, 1-48 of A-Z a-z 0-9 - _.")


class Tracking(Strict):
    """Links are served under the sender domain's tracking host (track.<domain>) once its
    CNAME verifies, else under POSTWIRE_PUBLIC_URL."""

    opens: bool = Field(False, description="An open pixel in HTML parts.")
    clicks: bool = Field(False, description="http(s) links rewritten to count clicks.")
    unsubscribe: bool = Field(False, description="An unsubscribe link and List-Unsubscribe.")


class CreateApiUser(Strict):
    name: str = Field(description="6-64 characters of A-Z a-z 0-9 @ - _.")
    type: Literal["trigger", "batch"] = Field(description="trigger or batch mail.")
    tracking: Tracking | None = Field(
        None, description="What its messages track when they name no tracking (default none)."
    )


class CreateDomain(Strict):
    name: str = Field(description="Domain to send from, 1-66 characters.")
    dkim_ed25519: bool = Field(
        False,
        description="Sign with an Ed25519 key too (RFC 8463), next to the RSA key: adds a "
        "dkim_ed25519 record to publish; that key signs once the record verifies.",
    )


class UpdateDomain(Strict):
    dkim_ed25519: bool = Field(
        description="Ed25519 signing on (a dkim_ed25519 record to publish; the key signs "
        "once it verifies) or off (the RSA key alone signs; the key is kept for turning "
        "it on again)."
    )


class CreateSender(Strict):
    address: str = Field(description="prefix@verified-domain")
    alias: str | None = Field(None, max_length=64, description="Display name.")


class PutTlsPolicy(Strict):
    mode: TlsMode = Field(description="require, opportunistic (the default) or none.")


class CreateLabel(Strict):
    name: str = Field(description="1-64 characters, no line breaks.")


class AttachmentIn(Strict):
    filename: str = Field(max_length=255)
    content: str = Field(description="Base64 of the file.")
    content_type: str | None = Field(None, description="MIME type; default octet-stream.")


Variables = dict[str, Annotated[str, StringConstraints(max_length=100_000)]]


class RecipientIn(Strict):
    address: str = Field(description='"Name <addr>" or addr.')
    variables: Variables = Field(
        default_factory=dict, description="This recipient's template values (over the shared)."
    )


class SendMessage(Strict):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    sender: str = Field(alias="from", description='"Name <addr>" or addr; a sender of yours.')
    to: list[str | RecipientIn] | str = Field(
        description="Recipients (one message each), at most 100: addresses, or objects "
        "{address, variables} for per-recipient template values."
    )
    subject: str | None = Field(None, description="Subject line (not with template_id).")
    template_id: str | None = Field(
        None,
        max_length=64,
        description="An approved template of yours or a public one, instead of subject, "
        "text and html; its type must be the API user's (trigger or batch).",
    )
    variables: Variables = Field(
        default_factory=dict, description="Template values shared by every recipient."
    )
    text: Text | None = Field(None, description="Plain-text body.")
    html: Text | None = Field(None, description="HTML body.")
    attachments: list[AttachmentIn] = Field(default_factory=list)
    label: str | None = Field(None, description="Label for statistics and search.")
    headers: dict[str, str] = Field(default_factory=dict, description="Extra headers.")
    tracking: Tracking | None = Field(
        None,
        description="What to track: an open pixel, click-counting links, an unsubscribe "
        "link with List-Unsubscribe (RFC 8058 one-click). Absent: the API user's default "
        "(PUT /v1/api-users/{name}/tracking); a template with unsubscribe, or a "
        "[Unsubscribe] tag in the body, adds the unsubscribe link either way.",
    )
