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

Codes (SendCloud v2 "API 返回码"; the nearest one where postwire's reason differs):

    =====  ===============================  ============================================
    code   SendCloud's text                 when
    =====  ===============================  ============================================
    40005  认证失败                         apiUser/apiKey missing or wrong
    40015  标签ID格式错误                   labelId/labelName not a valid label
    40201  模版调用名称invokeName不能为空   sendtemplate without templateInvokeName
    40801  发信人地址from不能为空           from missing
    40802  发信人地址from格式错误           from bad, not a sender of the account, or its
                                            domain not verified
    40804  发信人名称fromName格式错误       fromName bad
    40805  收件人地址不能为空               no recipient
    40806  收件人地址数组中, 存在非法地址   a bad address in to
    40807  收件人地址的数目不能超过100      more than 100 recipients in all
    40808  邮件主题subject不能为空          subject missing (mail/send)
    40809  邮件主题subject格式错误          subject too long or with control characters
    40811  回复地址replyto格式错误          a bad replyTo address
    40812  xsmtpapi不能为空                 sendtemplate with neither xsmtpapi nor to
    40813  xsmtpapi格式错误                 not a JSON object, or unsupported keys
    40815  xsmtpapi必须含有to字段           xsmtpapi without to (mail/send)
    40816  xsmtpapi中to字段的解析值不能为空 xsmtpapi to empty
    40817  xsmtpapi解析错误                 sub values not one per to; a template
                                            parameter without a value
    40819  附件大小不能超过10485760字节     the message passes 10 MB
    40820  此用户没有使用地址列表的权限     useAddressList=true (no address lists)
    40823  邮件模板不存在                   no template of that name
    40824  模板未通过审核                   template waiting for or refused approval
    40825  邮件模板和API_USER类型不匹配     trigger template, batch API user or reverse
    40827  xsmtpapi中to数组长度不能超过100  more than 100 xsmtpapi recipients
    40853  cc地址格式错误                   a bad address in cc
    40856  bcc地址格式错误                  a bad address in bcc
    40859  respEmailId格式错误              respEmailId not true/false
    40867  处理附件发生异常                 a bad attachment, more than 100 of them
    40869  headers格式错误                  not a JSON object of strings, a header
                                            postwire sets itself, or twice the same
    40870  html和plain不能同时为空          no body
    40879  回复地址replyto个数不能超过3个   more than 3 replyTo addresses
    40880  xsmtpapi中to字段含有非法邮箱格式 a bad address in xsmtpapi to
    40901  邮件发送失败                     refused by an account limit (labels, ...)
    40904  额度检查失败                     rate limit
    501    服务器异常                       anything else
    6001   你没有权限访问                   contentSummary, gzipCompress, cc/bcc on
                                            sendtemplate: features postwire lacks
    =====  ===============================  ============================================
"""

from __future__ import annotations

import base64
import json
import re
from collections.abc import Awaitable, Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from starlette.datastructures import FormData, UploadFile
from starlette.exceptions import HTTPException

from postwire_common import errors
from postwire_common.addresses import Mailbox, parse_mailbox
from postwire_common.identity import Identity, Principal
from postwire_ingest.api.context import IngestContext
from postwire_ingest.compose import (
    Attachment,
    Content,
    check_custom_headers,
    decode_attachment,
    mailbox_value,
)
from postwire_ingest.limits import MAX_ATTACHMENTS, MAX_RECIPIENTS, MAX_REQUEST_BYTES
from postwire_ingest.sending import SendCommand, check_label, unique_recipients
from postwire_ingest.template_store import TemplateQuery
from postwire_ingest.templates import Rendered, Template, check_type

PREFIX = "/apiv2/mail"
ROUTES = (("POST", f"{PREFIX}/send"), ("POST", f"{PREFIX}/sendtemplate"))


class Refused(Exception):
    """A SendCloud error answer: its code and text, and what postwire found wrong."""

    def __init__(self, code: Code, detail: str) -> None:
        super().__init__(code.status, detail)
        self.code = code
        self.detail = detail

    def body(self) -> dict[str, Any]:
        text = self.code.text
        message = f"{text} ({self.detail})" if self.detail and self.code is not AUTH else text
        return {"result": False, "statusCode": self.code.status, "message": message, "info": {}}


@dataclass(frozen=True)
class Code:
    status: int
    text: str

    def __call__(self, detail: str = "") -> Refused:
        return Refused(self, detail)


AUTH = Code(40005, "认证失败")
LABEL_BAD = Code(40015, "标签ID格式错误")
INVOKE_NAME_EMPTY = Code(40201, "模版调用名称invokeName不能为空")
FROM_EMPTY = Code(40801, "发信人地址from不能为空")
FROM_BAD = Code(40802, "发信人地址from格式错误")
FROM_NAME_BAD = Code(40804, "发信人名称fromName格式错误")
TO_EMPTY = Code(40805, "收件人地址不能为空")
TO_BAD = Code(40806, "收件人地址数组中, 存在非法地址")
TO_MANY = Code(40807, "收件人地址的数目不能超过100")
SUBJECT_EMPTY = Code(40808, "邮件主题subject不能为空")
SUBJECT_BAD = Code(40809, "邮件主题subject格式错误")
REPLY_TO_BAD = Code(40811, "回复地址replyto格式错误")
XSMTPAPI_EMPTY = Code(40812, "xsmtpapi不能为空")
XSMTPAPI_BAD = Code(40813, "xsmtpapi格式错误")
XSMTPAPI_NO_TO = Code(40815, "xsmtpapi必须含有to字段")
XSMTPAPI_TO_EMPTY = Code(40816, "xsmtpapi中to字段的解析值不能为空")
XSMTPAPI_PARSE = Code(40817, "xsmtpapi解析错误")
TOO_LARGE = Code(40819, "附件大小不能超过10485760字节")
NO_ADDRESS_LIST = Code(40820, "此用户没有使用地址列表的权限")
TEMPLATE_MISSING = Code(40823, "邮件模板不存在")
TEMPLATE_UNAPPROVED = Code(40824, "模板未通过审核")
TEMPLATE_TYPE = Code(40825, "邮件模板和API_USER类型不匹配")
XSMTPAPI_TO_MANY = Code(40827, "xsmtpapi中to数组长度不能超过100")
CC_BAD = Code(40853, "cc地址格式错误")
BCC_BAD = Code(40856, "bcc地址格式错误")
RESP_EMAIL_ID_BAD = Code(40859, "respEmailId格式错误")
ATTACHMENT_BAD = Code(40867, "处理附件发生异常")
HEADERS_BAD = Code(40869, "headers格式错误")
BODY_EMPTY = Code(40870, "html和plain不能同时为空")
REPLY_TO_MANY = Code(40879, "回复地址replyto个数不能超过3个")
XSMTPAPI_TO_BAD = Code(40880, "xsmtpapi中to字段含有非法邮箱格式")
SEND_FAILED = Code(40901, "邮件发送失败")
QUOTA = Code(40904, "额度检查失败")
SERVER = Code(501, "服务器异常")
NOT_SUPPORTED = Code(6001, "你没有权限访问")

# What send() can still refuse once every field was checked on its own.
_AFTER_CHECKS: dict[type[errors.PostwireError], Code] = {
    errors.AuthorizationFailed: AUTH,
    errors.InvalidEmail: TO_BAD,
    errors.EmptyValue: BODY_EMPTY,
    errors.MissingMacros: XSMTPAPI_PARSE,
    errors.SizeExceeded: TOO_LARGE,
    errors.NotFound: TEMPLATE_MISSING,
    errors.InvalidPermission: TEMPLATE_TYPE,
    errors.NotAvailable: SEND_FAILED,
    errors.QuotaExceeded: QUOTA,
}


def translate(exc: errors.PostwireError, *, templated: bool) -> Refused:
    if isinstance(exc, errors.InvalidValue):
        # Left after the checks: a variable's value breaking the subject, or the subject.
        return (XSMTPAPI_PARSE if templated else SUBJECT_BAD)(exc.description)
    return _AFTER_CHECKS.get(type(exc), SERVER)(exc.description)


@contextmanager
def refusing(code: Code, *kinds: type[errors.PostwireError]) -> Iterator[None]:
    """Domain errors of ``kinds`` (default: any) raised inside answered as ``code``."""
    caught = kinds or (errors.PostwireError,)
    try:
        yield
    except caught as exc:
        raise code(exc.description) from None


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


# -- xsmtpapi -----------------------------------------------------------------------


@dataclass(frozen=True)
class XSmtpApi:
    to: list[str]
    sub: dict[str, list[str]] = field(default_factory=dict)  # key -> one value per to


def parse_xsmtpapi(raw: str) -> XSmtpApi:
    """SendCloud's X-SMTPAPI JSON: ``to`` (required here) and ``sub``."""
    try:
        data = json.loads(raw)
    except ValueError:
        raise XSMTPAPI_BAD("not JSON") from None
    if not isinstance(data, dict):
        raise XSMTPAPI_BAD("not a JSON object")
    unknown = sorted(set(data) - {"to", "sub"})
    if unknown:
        raise XSMTPAPI_BAD(f"postwire does not support {', '.join(unknown)} in xsmtpapi")
    if "to" not in data:
        raise XSMTPAPI_NO_TO()
    to = data["to"]
    if not isinstance(to, list) or not all(isinstance(t, str) for t in to):
        raise XSMTPAPI_BAD("to is a list of addresses")
    if not to:
        raise XSMTPAPI_TO_EMPTY()
    if len(to) > MAX_RECIPIENTS:
        raise XSMTPAPI_TO_MANY()
    sub = data.get("sub") or {}
    if not isinstance(sub, dict):
        raise XSMTPAPI_PARSE("sub is an object of lists")
    values: dict[str, list[str]] = {}
    for key, given in sub.items():
        if not key or not isinstance(given, list) or len(given) != len(to):
            raise XSMTPAPI_PARSE(f"sub {key!r} needs one value per recipient ({len(to)})")
        if not all(isinstance(v, str | int | float) and not isinstance(v, bool) for v in given):
            raise XSMTPAPI_PARSE(f"sub {key!r}: values are strings or numbers")
        values[key] = [str(v) for v in given]
    return XSmtpApi(to, values)


def recipient_values(
    x: XSmtpApi, names: dict[str, str], shared: dict[str, str]
) -> dict[str, dict[str, str]]:
    """Each recipient's variables (lower-cased address -> parameter -> value), the first
    spelling of a repeated address winning, as recipients are de-duplicated."""
    found: dict[str, dict[str, str]] = {}
    for i, to in enumerate(x.to):
        address = parse_mailbox(to, field="recipient").address.lower()
        found.setdefault(address, {**shared, **{names[k]: v[i] for k, v in x.sub.items()}})
    return found


BRACE = "brace"  # the parameter whose value is "{" in a transient template


def transient_template(content: Rendered, keys: Sequence[str]) -> tuple[Rendered, dict[str, str]]:
    """mail/send's subject/plain/html as a template: each key (``%name%``) a parameter
    ``v<n>`` and each ``{`` the parameter ``brace``, so no text of the caller is ever
    read as a parameter. Returns the template and key -> parameter."""
    names = {key: f"v{n}" for n, key in enumerate(keys)}
    alternatives = [re.escape(k) for k in sorted(keys, key=len, reverse=True)] + [r"\{"]
    pattern = re.compile("|".join(alternatives))

    def convert(text: str | None) -> str | None:
        if text is None:
            return None
        return pattern.sub(lambda m: "{{" + names.get(m.group(), BRACE) + "}}", text)

    subject = convert(content.subject)
    assert subject is not None
    return Rendered(subject, convert(content.text), convert(content.html)), names


def template_with_keys(template: Rendered, keys: Sequence[str]) -> tuple[Rendered, dict[str, str]]:
    """A stored template with each SendCloud key (``%name%``) also a ``{{name}}``."""
    names: dict[str, str] = {}
    for key in keys:
        name = key.strip("%").strip()
        if not name or "{" in name or "}" in name:
            raise XSMTPAPI_PARSE(f"sub {key!r} is not a usable variable name")
        names[key] = name

    def convert(text: str | None) -> str | None:
        for key, name in names.items():
            text = text.replace(key, "{{" + name + "}}") if text is not None else None
        return text

    subject = convert(template.subject)
    assert subject is not None
    return Rendered(subject, convert(template.text), convert(template.html)), names


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
    sender = mailbox_value(Mailbox(mailbox.address, ""), "From")
    quoted = '"' + name.replace("\\", "\\\\").replace('"', '\\"') + '" <' + sender + ">"
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
