"""Aliyun DirectMail's sending actions (``POST /``, ``postwire_common.vendors.aliyun``)
over the same send code as ``POST /v1/messages``; its recipient lists in
``aliyun_receivers.py``.

::

    SingleSendMail          ──▶ SendCommand ──▶ Sender.send (as /v1/messages)
    BatchSendMail           ──▶ template by name × receiver list, 100 per Sender.send
    QueryMailAddressByParam ──▶ the account's senders
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

from postwire_common.errors import InvalidValue, NotFound
from postwire_common.http.actions import Action
from postwire_common.vendors.aliyun import AliyunError, Call, NonceBook, StoredNonces, action
from postwire_ingest.api.context import IngestContext
from postwire_ingest.compose import Content
from postwire_ingest.limits import MAX_RECIPIENTS
from postwire_ingest.receiver_store import ReceiverStore
from postwire_ingest.sending import SendCommand
from postwire_ingest.template_store import TemplateQuery
from postwire_ingest.templates import Template, check_type
from postwire_ingest.vendors import aliyun_receivers

COMMON = (
    "AccountName", "AddressType", "ClickTrace", "TagName", "ReplyToAddress", "ReplyAddress",
    "ReplyAddressAlias", "Headers",
)  # fmt: skip
SINGLE = (*COMMON, "ToAddress", "Subject", "HtmlBody", "TextBody", "FromAlias")
BATCH = (*COMMON, "TemplateName", "ReceiversName")


def mailbox(name: str | None, address: str) -> str:
    """``"name" <address>`` (the name quoted as RFC 5322 says), or the bare address."""
    if not name:
        return address
    return '"' + name.replace("\\", "\\\\").replace('"', '\\"') + f'" <{address}>'


def recipients(to_address: str) -> list[str]:
    """ToAddress: up to 100 addresses, comma-separated."""
    addresses = [a.strip() for a in to_address.split(",") if a.strip()]
    if not addresses:
        raise AliyunError("InvalidToAddress", "ToAddress is empty")
    if len(addresses) > MAX_RECIPIENTS:
        raise AliyunError("InvalidToAddress", f"at most {MAX_RECIPIENTS} addresses in ToAddress")
    return addresses


def headers(call: Call) -> dict[str, str]:
    """Headers (a JSON object) and the reply address, as custom headers."""
    given = call.get("Headers")
    try:
        extra = json.loads(given) if given else {}
    except ValueError:
        extra = None
    if not isinstance(extra, dict) or not all(isinstance(v, str) for v in extra.values()):
        raise AliyunError("InvalidParameter", "Headers must be a JSON object of strings")
    reply = call.get("ReplyAddress")
    if (call.get("ReplyToAddress") or "").lower() == "true" and reply is None:
        raise AliyunError(
            "InvalidParameter",
            "ReplyToAddress=true: postwire keeps no reply address per sender; give ReplyAddress",
        )
    if reply is not None:
        extra["Reply-To"] = mailbox(call.get("ReplyAddressAlias"), reply)
    return extra


def common(call: Call, accepted: Sequence[str]) -> tuple[str, Mapping[str, bool] | None]:
    """The sender and tracking of either send action, after its parameters are checked."""
    call.only(accepted)
    address_type = call.required("AddressType")
    if address_type != "1":
        raise AliyunError(
            "InvalidParameter", "AddressType must be 1: postwire has no random sender address"
        )
    # The SDK sends its booleans as Python spells them: True, False.
    if (call.get("ReplyToAddress") or "false").lower() not in ("true", "false"):
        raise AliyunError("InvalidParameter", "ReplyToAddress must be true or false")
    trace = call.get("ClickTrace")
    if trace not in (None, "0", "1"):
        raise AliyunError("InvalidParameter", "ClickTrace must be 0 or 1")
    # ClickTrace=1 is Aliyun's data tracking: opens and clicks. Unset: the API user's default.
    tracking = None if trace is None else {"opens": trace == "1", "clicks": trace == "1"}
    return call.required("AccountName"), tracking


async def sender_of(ctx: IngestContext, call: Call, account_name: str, alias: str | None) -> str:
    try:
        await ctx.sender.usable_sender(call.principal.tenant_id, account_name)
    except InvalidValue as exc:
        raise AliyunError("InvalidMailAddress.NotFound", exc.description, 404) from None
    return mailbox(alias, account_name)


def single_send_mail(ctx: IngestContext, nonces: NonceBook) -> Action:
    async def run(call: Call) -> dict[str, Any]:
        account_name, tracking = common(call, SINGLE)
        to = recipients(call.required("ToAddress"))
        subject = call.required("Subject")
        html, text = call.get("HtmlBody"), call.get("TextBody")
        if html is None and text is None:
            raise AliyunError("InvalidBody", "HtmlBody or TextBody is mandatory")
        command = SendCommand(
            sender=await sender_of(ctx, call, account_name, call.get("FromAlias")),
            to=to,
            content=Content(subject=subject, text=text, html=html, headers=headers(call)),
            label=call.get("TagName"),
            tracking=tracking,
        )
        accepted = await ctx.sender.send(call.principal, command)
        return {"EnvId": accepted[0]["env_id"]}

    return action("SingleSendMail", run, nonces)


async def template_named(ctx: IngestContext, call: Call, name: str) -> Template:
    account_id = call.principal.tenant_id
    listed = await ctx.templates.list_templates(TemplateQuery(account_id, name=name, limit=1000))
    exact = [t for t in listed if t["name"] == name]
    if not exact:
        raise AliyunError("InvalidTemplate.NotFound", f"no template named {name!r}", 404)
    template = await ctx.templates.for_sending(account_id, str(exact[0]["id"]))
    check_type(template.type, call.principal.user_type)
    return template


def batch_send_mail(ctx: IngestContext, receivers: ReceiverStore, nonces: NonceBook) -> Action:
    async def run(call: Call) -> dict[str, Any]:
        account_name, tracking = common(call, BATCH)
        template = await template_named(ctx, call, call.required("TemplateName"))
        name = call.required("ReceiversName")
        try:
            receiver_id = await receivers.find(call.principal.tenant_id, name=name)
        except NotFound as exc:
            raise AliyunError("InvalidReceiver.NotFound", exc.description, 404) from None
        sender = await sender_of(ctx, call, account_name, None)
        env_id: str | None = None
        after = ""
        # Chunks of the per-request recipient limit: each is one request of the native API
        # (a failure part way leaves the chunks before it sent).
        while members := await receivers.members(receiver_id, after, MAX_RECIPIENTS):
            after = members[-1].address.lower()
            command = SendCommand(
                sender=sender,
                to=[m.address for m in members],
                content=Content(subject="", headers=headers(call)),
                label=call.get("TagName"),
                tracking=tracking,
                template=template,
                template_id=template.id,
                recipient_variables={m.address.lower(): m.variables for m in members},
                unsubscribe=template.unsubscribe,
            )
            accepted = await ctx.sender.send(call.principal, command)
            env_id = env_id or accepted[0]["env_id"]
        if env_id is None:
            raise AliyunError("InvalidReceiver.NotFound", f"the list {name!r} has no members", 404)
        return {"EnvId": env_id}

    return action("BatchSendMail", run, nonces)


def query_mail_address_by_param(ctx: IngestContext, nonces: NonceBook) -> Action:
    async def run(call: Call) -> dict[str, Any]:
        call.only(("KeyWord", "PageNo", "PageSize", "Sendtype"))
        page, size = call.integer("PageNo", 1, 1, 10_000), call.integer("PageSize", 10, 1, 100)
        keyword = (call.get("KeyWord") or "").lower()
        sendtype = call.get("Sendtype")
        if sendtype not in (None, call.principal.user_type):
            found: list[dict[str, Any]] = []  # an API user sends one type of mail
        else:
            senders = await ctx.store.list_senders(call.principal.tenant_id)
            found = [s for s in senders if keyword in s["address"].lower()]
        shown = found[(page - 1) * size : page * size]
        return {
            "TotalCount": len(found),
            "PageNumber": page,
            "PageSize": size,
            "data": {"mailAddress": [_address(s, call.principal.user_type) for s in shown]},
        }

    return action("QueryMailAddressByParam", run, nonces)


def _address(sender: Mapping[str, Any], user_type: str) -> dict[str, Any]:
    usable = sender["domain_status"] in ("usable", "verified")
    return {
        "MailAddressId": sender["address"],
        "AccountName": sender["address"],
        "AccountStatus": "0" if usable else "1",  # Aliyun: 0 normal, 1 frozen
        "DomainStatus": "0" if usable else "1",
        "Sendtype": user_type,
        "ReplyAddress": "",
        "ReplyStatus": "0",
        "CreateTime": sender["created_at"].strftime("%Y-%m-%dT%H:%MZ"),
    }


def actions(ctx: IngestContext, receivers: ReceiverStore) -> list[Action]:
    # Sending and recipient lists change things: a replay is refused by every process.
    nonces = StoredNonces(ctx.store.pool, "ingest.signature_nonces")
    return [
        single_send_mail(ctx, nonces),
        batch_send_mail(ctx, receivers, nonces),
        query_mail_address_by_param(ctx, nonces),
        *aliyun_receivers.actions(receivers, nonces),
    ]
