"""SendCloud v2's mail API over the same send use case as ``POST /v1/messages``.

``POST /apiv2/mail/send`` and ``POST /apiv2/mail/sendtemplate`` take SendCloud's form
(urlencoded, or multipart with files in ``attachments``); ``apiUser`` is a postwire API
user's login (``<account>.<name>``) and ``apiKey`` its key, checked by the same
``Identity`` as HTTP Basic. Every answer is HTTP 200 with SendCloud's JSON::

    form ──Identity──▶ principal ──each field checked by the domain's own checks──▶
        SendCommand ──Sender.send──▶ {"result": true, "info": {"emailIdList": [env_id…]}}
    any PostwireError ──CODES below──▶ {"result": false, "statusCode": <code>, …}

Recipients: xsmtpapi ``to`` (one copy each; ``to``, ``cc``, ``bcc`` then ignored, as at
SendCloud), else ``to`` + ``cc`` + ``bcc``, each also one copy of its own (postwire
writes no shared To/Cc header: nobody sees the other recipients).

Variables: xsmtpapi ``sub`` (``{"%name%": [one value per to]}``) goes through
``templates.render``, as a template's variables do. mail/send makes a transient template
of subject/html/plain where each key is a parameter and each ``{`` one whose value is
``{`` (the caller's text is never read as a parameter); sendtemplate turns each key in
the stored template into ``{{name}}`` (``%name%`` -> ``name``), so a template written
with ``{{name}}`` or with ``%name%`` is filled. As everywhere in postwire, values are
HTML-escaped in the HTML body (SendCloud inserts them raw).

The codes and when each is answered: ``sendcloud_codes``; xsmtpapi and variables:
``sendcloud_variables``.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from starlette.datastructures import FormData, UploadFile
from starlette.exceptions import HTTPException

from postwire_common import errors
from postwire_common.addresses import parse_mailbox
from postwire_common.identity import Identity, Principal
from postwire_ingest.api.context import IngestContext
from postwire_ingest.compose import (
    Attachment,
    Content,
    check_custom_headers,
    decode_attachment,
    mailbox_value,
)
from postwire_ingest.limits import MAX_ATTACHMENTS, MAX_REQUEST_BYTES
from postwire_ingest.sending import SendCommand, check_label, unique_recipients
from postwire_ingest.template_store import TemplateQuery
from postwire_ingest.templates import Rendered, Template, check_type
from postwire_ingest.vendors.sendcloud_codes import (
    ATTACHMENT_BAD,
    AUTH,
    BCC_BAD,
    BODY_EMPTY,
    CC_BAD,
    FROM_BAD,
    FROM_EMPTY,
    FROM_NAME_BAD,
    HEADERS_BAD,
    INVOKE_NAME_EMPTY,
    LABEL_BAD,
    NO_ADDRESS_LIST,
    NOT_SUPPORTED,
    REPLY_TO_BAD,
    REPLY_TO_MANY,
    RESP_EMAIL_ID_BAD,
    SUBJECT_EMPTY,
    TEMPLATE_MISSING,
    TEMPLATE_TYPE,
    TEMPLATE_UNAPPROVED,
    TO_BAD,
    TO_EMPTY,
    TO_MANY,
    XSMTPAPI_EMPTY,
    XSMTPAPI_TO_BAD,
    Code,
    Refused,
    refusing,
    translate,
)
from postwire_ingest.vendors.sendcloud_variables import (
    BRACE,
    XSmtpApi,
    parse_xsmtpapi,
    recipient_values,
    template_with_keys,
    transient_template,
)

PREFIX = "/apiv2/mail"
ROUTES = (("POST", f"{PREFIX}/send"), ("POST", f"{PREFIX}/sendtemplate"))


_ADDRESS_ERRORS = (errors.InvalidEmail, errors.InvalidValue, errors.EmptyValue)


def _field(form: FormData, name: str) -> str:
    value = form.get(name)
    return value.strip() if isinstance(value, str) else ""


def _flag(form: FormData, name: str, code: Code, default: bool) -> bool:
    value = _field(form, name).lower()
    if value not in ("", "true", "false"):
        raise code(f"{name} is true or false")
    return default if not value else value == "true"


def split_addresses(value: str) -> list[str]:
    """SendCloud's ``a@x.org;b@y.org`` (empty items dropped)."""
    return [item.strip() for item in value.split(";") if item.strip()]


# -- the form -------------------------------------------------------------------------


@dataclass(frozen=True)
class Common:
    """The fields mail/send and mail/sendtemplate share, each checked."""

    sender: str
    content: Content  # headers, attachments; subject and bodies still empty
    label: str | None
    resp_email_id: bool


async def authenticate(identity: Identity, form: FormData) -> Principal:
    user, key = _field(form, "apiUser"), _field(form, "apiKey")
    if not user or not key:
        raise AUTH("apiUser and apiKey are required")
    with refusing(AUTH, errors.AuthorizationFailed):
        return await identity.authenticate(user, key)


async def check_sender(ctx: IngestContext, principal: Principal, form: FormData) -> str:
    """``from`` (with ``fromName`` over its display name), a usable sender of the account."""
    given = _field(form, "from")
    if not given:
        raise FROM_EMPTY()
    with refusing(FROM_BAD, errors.InvalidEmail, errors.InvalidValue):
        mailbox = parse_mailbox(given, field="from")
        await ctx.sender.usable_sender(principal.tenant_id, mailbox.address)
    name = _field(form, "fromName")
    if not name:
        return given
    escaped = name.replace("\\", "\\\\").replace('"', '\\"')
    quoted = f'"{escaped}" <{mailbox.address}>'
    with refusing(FROM_NAME_BAD, errors.InvalidEmail, errors.InvalidValue):
        parse_mailbox(quoted, field="fromName")
    return quoted


def check_headers(form: FormData, sender: str) -> dict[str, str]:
    raw = _field(form, "headers")
    headers: dict[str, str] = {}
    if raw:
        try:
            given = json.loads(raw)
        except ValueError:
            raise HEADERS_BAD("not JSON") from None
        if not isinstance(given, dict) or not all(
            isinstance(v, str | int | float) for v in given.values()
        ):
            raise HEADERS_BAD("a JSON object of strings")
        headers = {str(k): str(v) for k, v in given.items()}
    reply_to = split_addresses(_field(form, "replyTo"))
    if len(reply_to) > 3:
        raise REPLY_TO_MANY()
    if reply_to:
        with refusing(REPLY_TO_BAD, errors.InvalidEmail, errors.InvalidValue):
            boxes = [parse_mailbox(r, field="replyTo") for r in reply_to]
        headers["Reply-To"] = ", ".join(mailbox_value(b, "Reply-To") for b in boxes)
    if _flag(form, "useNotification", NOT_SUPPORTED, False):
        headers["Disposition-Notification-To"] = parse_mailbox(sender, field="from").address
    with refusing(HEADERS_BAD, errors.InvalidValue):
        return check_custom_headers(headers)


async def check_attachments(form: FormData) -> tuple[Attachment, ...]:
    files = [f for f in form.getlist("attachments") if isinstance(f, UploadFile)]
    if len(files) > MAX_ATTACHMENTS:
        raise ATTACHMENT_BAD(f"at most {MAX_ATTACHMENTS} attachments per message")
    made = []
    for upload in files:
        data = await upload.read()
        with refusing(ATTACHMENT_BAD):  # the same checks as /v1's base64 attachments
            made.append(
                decode_attachment(
                    upload.filename or "", base64.b64encode(data).decode(), upload.content_type
                )
            )
    return tuple(made)


async def check_common(ctx: IngestContext, principal: Principal, form: FormData) -> Common:
    for name in ("contentSummary", "gzipCompress"):
        if _field(form, name) and _field(form, name).lower() != "false":
            raise NOT_SUPPORTED(f"postwire does not support {name}")
    if _flag(form, "useAddressList", NOT_SUPPORTED, False):
        raise NO_ADDRESS_LIST("postwire has no address lists: give the recipients")
    sender = await check_sender(ctx, principal, form)
    headers = check_headers(form, sender)
    with refusing(LABEL_BAD, errors.InvalidValue):
        label = check_label(_field(form, "labelName") or _field(form, "labelId") or None)
    attachments = await check_attachments(form)
    resp_email_id = _flag(form, "respEmailId", RESP_EMAIL_ID_BAD, True)
    return Common(
        sender, Content("", headers=headers, attachments=attachments), label, resp_email_id
    )


def check_recipients(form: FormData) -> list[str]:
    """``to``, ``cc`` and ``bcc`` (SendCloud's lists), each address checked."""
    to = split_addresses(_field(form, "to"))
    if not to:
        raise TO_EMPTY()
    everyone: list[str] = []
    for name, code in (("to", TO_BAD), ("cc", CC_BAD), ("bcc", BCC_BAD)):
        given = split_addresses(_field(form, name))
        if given:
            with refusing(TO_MANY, errors.SizeExceeded), refusing(code, *_ADDRESS_ERRORS):
                unique_recipients(given)
            everyone += given
    with refusing(TO_MANY, errors.SizeExceeded):
        unique_recipients(everyone)
    return everyone


def check_xsmtpapi(raw: str) -> XSmtpApi:
    x = parse_xsmtpapi(raw)
    with refusing(XSMTPAPI_TO_BAD, errors.InvalidEmail, errors.InvalidValue):
        unique_recipients(x.to)
    return x


# -- the two routes ---------------------------------------------------------------------


async def send_command(ctx: IngestContext, principal: Principal, form: FormData) -> Sent:
    common = await check_common(ctx, principal, form)
    raw = _field(form, "xsmtpapi")
    x = check_xsmtpapi(raw) if raw else None
    to = x.to if x is not None else check_recipients(form)
    subject = _field(form, "subject")
    if not subject:
        raise SUBJECT_EMPTY()
    html, plain = form.get("html"), form.get("plain")
    html = html if isinstance(html, str) and html else None
    plain = plain if isinstance(plain, str) and plain else None
    if html is None and plain is None:
        raise BODY_EMPTY()
    texts = Rendered(subject, plain, html)
    template, personal = None, {}
    if x is not None and x.sub:
        template, names = transient_template(texts, list(x.sub))
        personal = recipient_values(x, names, {BRACE: "{"})
    content = Content(subject, plain, html, common.content.attachments, common.content.headers)
    return Sent(common, SendCommand(
        sender=common.sender, to=to, content=content, label=common.label, template=template,
        variables={BRACE: "{"} if template else {}, recipient_variables=personal,
    ))  # fmt: skip


async def find_template(ctx: IngestContext, principal: Principal, name: str) -> Template:
    """The approved template called ``name`` (the account's own before a public one)."""
    rows = await ctx.templates.list_templates(TemplateQuery(principal.tenant_id, name=name))
    exact = sorted((r for r in rows if r["name"] == name), key=lambda r: r["account_id"] is None)
    if not exact:
        raise TEMPLATE_MISSING(f"no template named {name!r}")
    with (
        refusing(TEMPLATE_UNAPPROVED, errors.NotAvailable),
        refusing(TEMPLATE_MISSING, errors.NotFound),
    ):
        template = await ctx.templates.for_sending(principal.tenant_id, exact[0]["id"])
    with refusing(TEMPLATE_TYPE, errors.InvalidPermission):
        check_type(template.type, principal.user_type)
    return template


async def template_command(ctx: IngestContext, principal: Principal, form: FormData) -> Sent:
    common = await check_common(ctx, principal, form)
    if _field(form, "cc") or _field(form, "bcc"):
        raise NOT_SUPPORTED("mail/sendtemplate takes no cc or bcc (as at SendCloud)")
    raw = _field(form, "xsmtpapi")
    if not raw and not _field(form, "to"):
        raise XSMTPAPI_EMPTY("give the recipients in xsmtpapi")
    x = check_xsmtpapi(raw) if raw else None
    to = x.to if x is not None else check_recipients(form)
    name = _field(form, "templateInvokeName")
    if not name:
        raise INVOKE_NAME_EMPTY()
    stored = await find_template(ctx, principal, name)
    subject = _field(form, "subject") or stored.subject
    keys = list(x.sub) if x is not None else []
    template, names = template_with_keys(Rendered(subject, stored.text, stored.html), keys)
    personal = recipient_values(x, names, {}) if x is not None else {}
    return Sent(common, SendCommand(
        sender=common.sender, to=to, content=common.content, label=common.label,
        template=template, template_id=stored.id, recipient_variables=personal,
        unsubscribe=stored.unsubscribe,
    ))  # fmt: skip


@dataclass(frozen=True)
class Sent:
    common: Common
    command: SendCommand


Build = Callable[[IngestContext, Principal, FormData], Awaitable[Sent]]


def router(ctx: IngestContext) -> APIRouter:
    api = APIRouter(include_in_schema=False)  # SendCloud's shape, not our envelope

    async def answer(request: Request, build: Build) -> JSONResponse:
        templated = False
        try:
            async with request.form(
                max_files=MAX_ATTACHMENTS + 1, max_part_size=MAX_REQUEST_BYTES
            ) as form:
                principal = await authenticate(request.app.state.identity, form)
                sent: Sent = await build(ctx, principal, form)
                templated = sent.command.template is not None
                messages = await ctx.sender.send(principal, sent.command)
        except Refused as refused:
            return JSONResponse(refused.body())
        except HTTPException as exc:  # a malformed multipart body
            return JSONResponse(ATTACHMENT_BAD(str(exc.detail)).body())
        except errors.PostwireError as exc:
            return JSONResponse(translate(exc, templated=templated).body())
        info = {"emailIdList": [m["env_id"] for m in messages]} if sent.common.resp_email_id else {}
        return JSONResponse(
            {"result": True, "statusCode": 200, "message": "请求成功", "info": info}
        )

    @api.post(f"{PREFIX}/send")
    async def send(request: Request) -> JSONResponse:
        return await answer(request, send_command)

    @api.post(f"{PREFIX}/sendtemplate")
    async def sendtemplate(request: Request) -> JSONResponse:
        return await answer(request, template_command)

    return api
