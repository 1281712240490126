"""Tencent Cloud SES (2020-10-02) actions that ingest answers: SendEmail, and the email
templates of ``tencent_templates.py``.

::

    SendEmail {FromEmailAddress, Destination[≤50], Subject, Simple{Html,Text} (base64)
               | Template{TemplateID, TemplateData (JSON string)}, Attachments, ReplyTo…}
        ──▶ SendCommand ──▶ Sender.send (the same as POST /v1/messages) ──▶ {MessageId}
    CreateEmailTemplate / UpdateEmailTemplate / GetEmailTemplate / DeleteEmailTemplate /
    ListEmailTemplates ──▶ TemplateStore (the same as /v1/templates), TemplateID = number

A message goes to each recipient separately, as every message of ours does; MessageId is
the first recipient's env_id (GetSendEmailStatus lists every recipient of that request).
A template is named by its integer ``number``; SendEmail's Subject (which may use the
template's ``{{variables}}``) replaces the template's own subject.
Wire format, signature and error shape: ``postwire_common.vendors.tencent``.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import replace
from functools import partial
from typing import Any

from pydantic import Field

from postwire_common import errors
from postwire_common.addresses import parse_mailbox
from postwire_common.http.actions import Action
from postwire_common.vendors.tencent import Call, Params, TencentError, action
from postwire_ingest.api.context import IngestContext
from postwire_ingest.compose import Attachment, Content, decode_attachment, mailbox_value
from postwire_ingest.limits import MAX_ATTACHMENTS, MAX_REQUEST_BYTES
from postwire_ingest.sending import SendCommand, fingerprint
from postwire_ingest.templates import Template, check_type
from postwire_ingest.vendors.tencent_templates import decoded, template_actions

MAX_DESTINATIONS = 50  # Tencent: one SendEmail reaches at most 50 addresses


class SimpleIn(Params):
    Html: str | None = None
    Text: str | None = None


class TemplateIn(Params):
    TemplateID: int
    TemplateData: str | None = None


class AttachmentIn(Params):
    FileName: str
    Content: str | None = None
    FileURL: str | None = None


class SendEmail(Params):
    FromEmailAddress: str
    Destination: list[str] = Field(default_factory=list)
    Subject: str | None = None
    ReplyToAddresses: str | None = None
    Cc: list[str] = Field(default_factory=list)
    Bcc: list[str] = Field(default_factory=list)
    Template: TemplateIn | None = None
    Simple: SimpleIn | None = None
    Attachments: list[AttachmentIn] = Field(default_factory=list)
    Unsubscribe: str | None = None
    TriggerType: int | None = None
    SmtpMessageId: str | None = None
    SmtpHeaders: str | None = None
    HeaderFrom: str | None = None


def template_values(data: str | None) -> dict[str, str]:
    """TemplateData: a JSON object of names to strings (numbers are written as text)."""
    if data is None or not data.strip():
        return {}
    try:
        values = json.loads(data)
    except ValueError:
        values = None
    if not isinstance(values, dict):
        raise TencentError(
            "InvalidParameterValue.TemplateDataError", "TemplateData must be a JSON object"
        )
    out: dict[str, str] = {}
    for name, value in values.items():
        if isinstance(value, str):
            out[name] = value
        elif isinstance(value, int | float) and not isinstance(value, bool):
            out[name] = str(value)
        else:
            raise TencentError(
                "InvalidParameterValue.TemplateDataError",
                f"TemplateData.{name} must be a string or a number",
            )
    return out


def refuse_unsupported(p: SendEmail) -> None:
    """Fields whose meaning postwire cannot give: an error naming them, never ignored."""
    named = [
        name
        for name, given in (
            ("Cc", p.Cc),  # each recipient gets a copy of their own: no shared Cc/Bcc list
            ("Bcc", p.Bcc),
            ("SmtpMessageId", p.SmtpMessageId),  # every copy has its own Message-ID
            ("HeaderFrom", p.HeaderFrom),  # From is always the verified sender
            ("Attachments.FileURL", any(a.FileURL for a in p.Attachments)),
        )
        if given
    ]
    if named:
        raise TencentError(
            "UnsupportedOperation", f"postwire does not support {', '.join(named)} in SendEmail"
        )


def headers_of(p: SendEmail) -> dict[str, str]:
    headers: dict[str, str] = {}
    if p.SmtpHeaders:
        try:
            given = json.loads(p.SmtpHeaders)
        except ValueError:
            given = None
        if not isinstance(given, dict) or not all(isinstance(v, str) for v in given.values()):
            raise TencentError(
                "InvalidParameterValue", "SmtpHeaders must be a JSON object of header values"
            )
        headers.update(given)
    if p.ReplyToAddresses:
        box = parse_mailbox(p.ReplyToAddresses, field="ReplyToAddresses")
        headers["Reply-To"] = mailbox_value(box, "Reply-To")
    return headers


def attachments_of(p: SendEmail) -> tuple[Attachment, ...]:
    if len(p.Attachments) > MAX_ATTACHMENTS:
        raise TencentError(
            "FailedOperation.TooManyAttachments", f"at most {MAX_ATTACHMENTS} attachments"
        )
    try:
        return tuple(decode_attachment(a.FileName, a.Content or "", None) for a in p.Attachments)
    except errors.InvalidValue as exc:
        raise TencentError("InvalidParameterValue.AttachContentIsWrong", exc.description) from None


async def sendable(ctx: IngestContext, call: Call, number: int, subject: str | None) -> Template:
    """The template numbered ``number`` as SendEmail sends it: approved, of the API user's
    type, with the request's Subject."""
    tenant = call.principal.tenant_id
    template = await ctx.templates.for_sending(
        tenant, await ctx.templates.id_of_number(tenant, number)
    )
    check_type(template.type, call.principal.user_type)
    return replace(template, subject=subject) if subject else template


async def send_email(ctx: IngestContext, call: Call) -> Mapping[str, Any]:
    p = call.params(SendEmail)
    refuse_unsupported(p)
    if not p.Destination:
        raise TencentError("InvalidParameterValue.EmailAddressIsNULL", "Destination is empty")
    if len(p.Destination) > MAX_DESTINATIONS:
        raise TencentError(
            "FailedOperation.TooManyRecipients", f"at most {MAX_DESTINATIONS} Destination addresses"
        )
    template, variables, text, html = None, {}, None, None
    if p.Template is not None and p.Simple is not None:
        raise TencentError("InvalidParameterValue", "send Template or Simple, not both")
    if p.Template is not None:
        template = await sendable(ctx, call, p.Template.TemplateID, p.Subject)
        variables = template_values(p.Template.TemplateData)
    elif p.Simple is not None and (p.Simple.Html or p.Simple.Text):
        if not p.Subject:
            raise TencentError("MissingParameter", "Subject is required with Simple")
        html = decoded(p.Simple.Html, "Simple.Html", "InvalidParameterValue.EmailContentIsWrong")
        text = decoded(p.Simple.Text, "Simple.Text", "InvalidParameterValue.EmailContentIsWrong")
    else:
        raise TencentError("FailedOperation.MissingEmailContent", "Template or Simple is required")
    try:
        await ctx.sender.usable_sender(
            call.principal.tenant_id, parse_mailbox(p.FromEmailAddress, field="from").address
        )
    except errors.InvalidValue as exc:
        raise TencentError("InvalidParameterValue.NoSuchSender", exc.description) from None
    command = SendCommand(
        sender=p.FromEmailAddress,
        to=p.Destination,
        template=template,
        template_id=template.id if template else None,
        variables=variables,
        content=Content(
            subject=p.Subject or "",
            text=text,
            html=html,
            attachments=attachments_of(p),
            headers=headers_of(p),
        ),
        # "0" or absent: no link asked for (the API user's default still applies);
        # 1-12 name the link's language, which postwire does not vary.
        unsubscribe=bool(template and template.unsubscribe) or p.Unsubscribe not in (None, "", "0"),
        fingerprint=fingerprint(call.body),
    )
    messages = await ctx.sender.send(call.principal, command)
    if all(m["status"] == "suppressed" for m in messages):
        raise TencentError(
            "FailedOperation.EmailAddrInBlacklist",
            "every Destination address is on the account's suppression list",
        )
    return {"MessageId": messages[0]["env_id"]}


SEND_CODES: Mapping[type[errors.PostwireError], str] = {
    errors.NotFound: "FailedOperation.InvalidTemplateID",
    errors.NotAvailable: "OperationDenied.TemplateStatusError",
    errors.InvalidPermission: "FailedOperation.InvalidTemplateID",
    errors.SizeExceeded: "FailedOperation.EmailContentToolarge",
    errors.QuotaExceeded: "FailedOperation.FrequencyLimit",
}


def actions(ctx: IngestContext) -> list[Action]:
    send = action(
        "SendEmail", partial(send_email, ctx), codes=SEND_CODES, body_bytes=MAX_REQUEST_BYTES
    )
    return [send, *template_actions(ctx)]
