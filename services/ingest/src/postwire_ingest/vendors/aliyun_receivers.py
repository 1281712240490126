"""Aliyun DirectMail's recipient lists: CreateReceiver, SaveReceiverDetail,
QueryReceiverByParam and DeleteReceiver over ``receiver_store.py``; BatchSendMail
(``aliyun.py``) sends a template to one.

A member's variables are what its copy of the template is rendered with: Aliyun's short
keys become ``{{UserName}}``, ``{{NickName}}``, ``{{Gender}}``, ``{{Birthday}}`` and
``{{Mobile}}``; the older ``{"Email", "Data"}`` form gives any names in ``Data``.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from postwire_common.addresses import parse_mailbox
from postwire_common.errors import AlreadyExists, NotFound, PostwireError
from postwire_common.http.actions import Action
from postwire_common.vendors.aliyun import AliyunError, Call, NonceBook, action
from postwire_ingest.receiver_store import Member, ReceiverStore

MAX_DETAILS = 500  # Aliyun: recipients per SaveReceiverDetail
SHORT_KEYS = {"u": "UserName", "n": "NickName", "g": "Gender", "b": "Birthday", "m": "Mobile"}


def _variables(entry: Mapping[str, Any]) -> dict[str, str]:
    if "Email" in entry:
        data = entry.get("Data") or {}
        if isinstance(data, str):
            data = json.loads(data)
        if not isinstance(data, dict):
            raise ValueError("Data must be a JSON object")
        return {str(k): str(v) for k, v in data.items()}
    unknown = set(entry) - {"e", *SHORT_KEYS}
    if unknown:
        raise ValueError(f"unknown keys {', '.join(sorted(unknown))}")
    return {SHORT_KEYS[k]: str(v) for k, v in entry.items() if k in SHORT_KEYS}


def parse_details(detail: str) -> tuple[list[Member], list[tuple[str, str]]]:
    """SaveReceiverDetail's ``Detail``: the members it names, and (address, reason) for
    each entry refused. The first entry of an address wins."""
    try:
        entries = json.loads(detail)
    except ValueError:
        raise AliyunError("InvalidParameter", "Detail is not a JSON array") from None
    if not isinstance(entries, list) or not entries:
        raise AliyunError("InvalidParameter", "Detail must be a non-empty JSON array")
    if len(entries) > MAX_DETAILS:
        raise AliyunError("InvalidParameter", f"at most {MAX_DETAILS} recipients per request")
    members: dict[str, Member] = {}
    refused: list[tuple[str, str]] = []
    for entry in entries:
        raw = entry.get("Email", entry.get("e")) if isinstance(entry, dict) else None
        shown = str(raw)
        try:
            if not isinstance(raw, str):
                raise ValueError("no address (e or Email)")
            assert isinstance(entry, dict)
            address = parse_mailbox(raw, field="recipient").address
            variables = _variables(entry)
        except (ValueError, PostwireError) as exc:  # a bad address or bad variables
            reason = exc.description if isinstance(exc, PostwireError) else str(exc)
            refused.append((shown, reason))
            continue
        if address.lower() in members:
            refused.append((address, "the address is given twice"))
        else:
            members[address.lower()] = Member(address, variables)
    return list(members.values()), refused


def actions(receivers: ReceiverStore, nonces: NonceBook) -> list[Action]:
    async def create(call: Call) -> dict[str, Any]:
        call.only(("ReceiversName", "ReceiversAlias", "Desc"))
        name = call.required("ReceiversName")
        if len(name) > 30:
            raise AliyunError("InvalidParameter", "ReceiversName is 1 to 30 characters")
        alias = call.required("ReceiversAlias")
        try:
            made = await receivers.create(
                call.principal.tenant_id, name, alias, call.get("Desc") or ""
            )
        except AlreadyExists as exc:
            raise AliyunError("InvalidReceiverName.Duplicate", exc.description) from None
        return {"ReceiverId": made}

    async def save(call: Call) -> dict[str, Any]:
        call.only(("ReceiverId", "Detail"))
        members, refused = parse_details(call.required("Detail"))
        try:
            known = await receivers.add(
                call.principal.tenant_id, call.required("ReceiverId"), members
            )
        except NotFound as exc:
            raise AliyunError("InvalidReceiver.NotFound", exc.description, 404) from None
        refused += [(a, "the list has this address already") for a in known]
        return {
            "SuccessCount": len(members) - len(known),
            "ErrorCount": len(refused),
            "Data": {"Detail": [{"Email": a, "ErrMessage": why} for a, why in refused]},
        }

    async def query(call: Call) -> dict[str, Any]:
        call.only(("KeyWord", "PageSize", "NextStart", "PageNo", "Status"))
        size = call.integer("PageSize", 100, 1, 100)
        rows = await receivers.listing(
            call.principal.tenant_id, call.get("KeyWord"), size + 1, call.get("NextStart")
        )
        more = len(rows) > size
        rows = rows[:size]
        return {
            "TotalCount": len(rows),
            "PageSize": size,
            "NextStart": rows[-1]["name"] if more else "",
            "data": {"receiver": [_receiver(r) for r in rows]},
        }

    async def delete(call: Call) -> dict[str, Any]:
        call.only(("ReceiverId",))
        try:
            await receivers.delete(call.principal.tenant_id, call.required("ReceiverId"))
        except NotFound as exc:
            raise AliyunError("InvalidReceiver.NotFound", exc.description, 404) from None
        return {}

    return [
        action("CreateReceiver", create, nonces),
        action("SaveReceiverDetail", save, nonces),
        action("QueryReceiverByParam", query, nonces),
        action("DeleteReceiver", delete, nonces),
    ]


def _receiver(row: Mapping[str, Any]) -> dict[str, Any]:
    return {
        "ReceiverId": row["id"],
        "ReceiversName": row["name"],
        "ReceiversAlias": row["alias"],
        "Desc": row["description"],
        "Count": str(row["count"]),
        "ReceiversStatus": "1",  # upload complete: members are stored as they are saved
        "CreateTime": row["created_at"].strftime("%Y-%m-%dT%H:%MZ"),
        "UtcCreateTime": int(row["created_at"].timestamp()),
    }
