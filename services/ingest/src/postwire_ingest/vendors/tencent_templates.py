"""Tencent Cloud SES (2020-10-02) email template actions, over the same template store as
``/v1/templates``.

Tencent's TemplateID is an integer: each template has a ``number`` (migration 0017) next
to its id. A Tencent template has no subject of its own: it is stored with its name as
subject, and SendEmail's Subject replaces it (``tencent.py``). TemplateStatus: 0
approved, 1 waiting for an operator (a sensitive account), 2 rejected (ReviewReason).
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Mapping
from functools import partial
from typing import Any

from postwire_common import errors
from postwire_common.http.actions import Action
from postwire_common.vendors.tencent import Call, Params, TencentError, action
from postwire_ingest.api.context import IngestContext
from postwire_ingest.limits import MAX_TEMPLATE_REQUEST_BYTES, MAX_TEMPLATES_PER_ACCOUNT
from postwire_ingest.templates import Draft, Status, TemplateType, check_draft

MAX_PAGE = 100  # Tencent: Limit of a listing
TEMPLATE_STATUS = {Status.APPROVED: 0, Status.APPROVING: 1, Status.REJECTED: 2}


class TemplateContentIn(Params):
    Html: str | None = None
    Text: str | None = None


class CreateTemplate(Params):
    TemplateName: str
    TemplateContent: TemplateContentIn


class UpdateTemplate(CreateTemplate):
    TemplateID: int


class TemplateNumber(Params):
    TemplateID: int


class Page(Params):
    Limit: int
    Offset: int = 0


def decoded(value: str | None, field: str, code: str) -> str | None:
    """A base64 UTF-8 text of the request, or ``code``."""
    if value is None:
        return None
    try:
        return base64.b64decode(value, validate=True).decode("utf-8")
    except (binascii.Error, ValueError):
        raise TencentError(code, f"{field} is not base64 of UTF-8 text") from None


def encoded(value: str | None) -> str | None:
    return None if value is None else base64.b64encode(value.encode("utf-8")).decode()


def draft_of(p: CreateTemplate) -> Draft:
    wrong = "InvalidParameterValue.TemplateContentIsWrong"
    html = decoded(p.TemplateContent.Html, "TemplateContent.Html", wrong)
    text = decoded(p.TemplateContent.Text, "TemplateContent.Text", wrong)
    if not (html or text):
        raise TencentError(
            "InvalidParameterValue.TemplateContentIsNULL", "TemplateContent needs Html or Text"
        )
    if not p.TemplateName.strip():
        raise TencentError("InvalidParameterValue.TemplateNameIsNULL", "TemplateName is empty")
    # No subject in a Tencent template: SendEmail's Subject replaces this one.
    return Draft(name=p.TemplateName, subject=p.TemplateName, text=text, html=html)


async def create_template(ctx: IngestContext, call: Call) -> Mapping[str, Any]:
    draft = draft_of(call.params(CreateTemplate))
    made = await ctx.templates.create(
        call.principal.tenant_id,
        draft,
        TemplateType(call.principal.user_type),  # sendable by this API user (check_type)
        check_draft(draft),
        MAX_TEMPLATES_PER_ACCOUNT,
    )
    return {"TemplateID": await ctx.templates.number_of(made.id)}


async def update_template(ctx: IngestContext, call: Call) -> Mapping[str, Any]:
    p = call.params(UpdateTemplate)
    draft = draft_of(p)
    tenant = call.principal.tenant_id
    template_id = await ctx.templates.id_of_number(tenant, p.TemplateID)
    await ctx.templates.update(tenant, template_id, draft, check_draft(draft))
    return {}


async def get_template(ctx: IngestContext, call: Call) -> Mapping[str, Any]:
    tenant = call.principal.tenant_id
    number = call.params(TemplateNumber).TemplateID
    template = await ctx.templates.get(tenant, await ctx.templates.id_of_number(tenant, number))
    return {
        "TemplateContent": {"Html": encoded(template.html), "Text": encoded(template.text)},
        "TemplateStatus": TEMPLATE_STATUS[template.status],
        "TemplateName": template.name,
    }


async def delete_template(ctx: IngestContext, call: Call) -> Mapping[str, Any]:
    tenant = call.principal.tenant_id
    number = call.params(TemplateNumber).TemplateID
    await ctx.templates.delete(tenant, await ctx.templates.id_of_number(tenant, number))
    return {}


async def list_templates(ctx: IngestContext, call: Call) -> Mapping[str, Any]:
    p = call.params(Page)
    if not 1 <= p.Limit <= MAX_PAGE or p.Offset < 0:
        raise TencentError("FailedOperation.InvalidLimit", f"Limit is 1 to {MAX_PAGE}, Offset ≥ 0")
    rows, total = await ctx.templates.numbered_page(call.principal.tenant_id, p.Offset, p.Limit)
    return {
        "TemplatesMetadata": [
            {
                "CreatedTimestamp": int(r["created_at"].timestamp()),
                "TemplateName": r["name"],
                "TemplateStatus": TEMPLATE_STATUS[Status(r["status"])],
                "TemplateID": r["number"],
                "ReviewReason": r["reject_reason"] or "",
            }
            for r in rows
        ],
        "TotalCount": total,
    }


TEMPLATE_CODES: Mapping[type[errors.PostwireError], str] = {
    errors.NotFound: "InvalidParameterValue.TemplateNotExist",
    errors.SizeExceeded: "FailedOperation.TemplateContentToolarge",
    errors.NotAvailable: "FailedOperation.ExceedTemplateLimit",
}
# A template a scheduled task still sends (not_available) stays FailedOperation.
DELETE_CODES: Mapping[type[errors.PostwireError], str] = {
    errors.NotFound: "InvalidParameterValue.TemplateNotExist",
}


def template_actions(ctx: IngestContext) -> list[Action]:
    big = MAX_TEMPLATE_REQUEST_BYTES
    return [
        action("CreateEmailTemplate", partial(create_template, ctx), codes=TEMPLATE_CODES,
               body_bytes=big),
        action("UpdateEmailTemplate", partial(update_template, ctx), codes=TEMPLATE_CODES,
               body_bytes=big),
        action("GetEmailTemplate", partial(get_template, ctx), codes=TEMPLATE_CODES),
        action("DeleteEmailTemplate", partial(delete_template, ctx), codes=DELETE_CODES),
        action("ListEmailTemplates", partial(list_templates, ctx), codes=TEMPLATE_CODES),
    ]  # fmt: skip
