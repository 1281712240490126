"""The send use case: validate, compose, commit rows + outbox, wake the relay.

::

    SendRequest ──check──▶ sender, recipients, content ──prepare──▶ StoredContent
        ──per recipient──▶ messages row + request MailEvent (ids, no content)
        ──per domain──▶ RecipientBatch (in OutboundBatches) with the account's TLS mode
                        for the domain (tls_policies); EventBatch of request events
        ──one statement──▶ ingest.contents (once), ingest.messages, ingest.outbox
                           (+ idempotency key; nothing is written if it was used)
        ──commit──▶ 202; the outbox relay publishes after

Accepted means committed: the answer is given only after the transaction commits, and
the relay publishes whatever is committed, even if the broker was down at that moment.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import re
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from dataclasses import replace as dc_replace
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar
from urllib.parse import urlsplit, urlunsplit

from postwire_common.addresses import Mailbox, check_header_value, parse_mailbox
from postwire_common.batching import Batcher
from postwire_common.broker import topology
from postwire_common.broker.publish import Outgoing
from postwire_common.content import StoredContent
from postwire_common.errors import EmptyValue, InvalidEmail, InvalidValue, SizeExceeded
from postwire_common.identity import Principal
from postwire_common.ids import new_id
from postwire_common.observability.metrics import ACCEPTED
from postwire_common.schemas import (
    DeliveryStatus,
    DkimKey,
    EventBatch,
    EventType,
    MailEvent,
    OutboundBatches,
    Recipient,
    RecipientBatch,
    SendMethod,
    TlsMode,
)
from postwire_common.tracking.choice import Tracking
from postwire_common.tracking.html import UNSUBSCRIBE_TAG
from postwire_common.ttl_cache import TtlCache
from postwire_ingest.compose import Content, mailbox_value, prepare
from postwire_ingest.limits import MAX_LABEL_CHARS, MAX_RECIPIENTS
from postwire_ingest.store import IngestStore, KeyedRequest, MessageRow, SenderRow
from postwire_ingest.templates import Content as TemplateContent
from postwire_ingest.templates import render
from postwire_ingest.tls_policies import mode_for


@dataclass(frozen=True)
class SendCommand:
    """A send request after parsing, before any check against the account's data."""

    sender: str
    to: Sequence[str]
    content: Content
    label: str | None = None
    tracking: Mapping[str, bool] | None = None  # None: the API user's default
    unsubscribe: bool = False  # the template asks for an unsubscribe link
    method: SendMethod = SendMethod.API  # how it came in (sending details)
    template_id: str | None = None
    task_id: str | None = None
    # With a template: ``content`` holds its attachments and headers, and each recipient's
    # subject and bodies are the template rendered with ``variables`` and, over them, the
    # recipient's own (lower-cased address -> values).
    template: TemplateContent | None = None
    variables: Mapping[str, str] = field(default_factory=dict)
    recipient_variables: Mapping[str, Mapping[str, str]] = field(default_factory=dict)
    idempotency_key: str | None = None
    fingerprint: bytes = b""  # hash of the request body, for idempotency-key reuse checks
    # SMTP submission: the message as the client sent it (``content`` then holds only its
    # subject), and its Message-ID, which every recipient's copy keeps.
    as_sent: StoredContent | None = None
    message_id: str | None = None


# A domain may send once SPF and DKIM verify (usable); verified adds MX.
SENDING_STATES = frozenset({"usable", "verified"})


def signing_keys(sender: SenderRow) -> list[DkimKey]:
    """The keys delivery signs the sender's mail with: the RSA key, then the Ed25519 key
    where it signs (RFC 8463: receivers that do not know it rely on the RSA signature)."""
    keys = [DkimKey(domain=sender.domain, selector=sender.dkim_selector,
                    private_key=sender.dkim_private_key)]  # fmt: skip
    if sender.dkim_ed25519_selector and sender.dkim_ed25519_private_key:
        keys.append(DkimKey(domain=sender.domain, selector=sender.dkim_ed25519_selector,
                            private_key=sender.dkim_ed25519_private_key))  # fmt: skip
    return keys


def suppressed_event(request: MailEvent, reason: str) -> MailEvent:
    """The ``invalid`` event (status 2) of a recipient on its account's suppression list."""
    return request.model_copy(
        update={
            "event_id": f"{request.env_id}:invalid",
            "event": EventType.INVALID,
            "time": request.time + timedelta(microseconds=1),  # after it, in timelines
            "subject": None,
            "status": DeliveryStatus.INVALID_ADDRESS,
            "err_msg": f"suppressed: the address is on the account's suppression list ({reason})",
        }
    )


@dataclass(frozen=True)
class Accepted:
    env_id: str
    msg_id: str
    rcpt: str
    status: str

    def as_dict(self) -> dict[str, str]:
        return {
            "env_id": self.env_id,
            "msg_id": self.msg_id,
            "rcpt": self.rcpt,
            "status": self.status,
        }


def fingerprint(body: bytes) -> bytes:
    return hashlib.sha256(body).digest()


def unique_recipients(to: Sequence[str]) -> list[Mailbox]:
    """Each recipient once (addresses compared without case; the first spelling and
    display name win). ``ann@example.org``, ``Ann <ann@example.org>`` and
    ``"Zoë" <zoe@example.org>`` are all accepted; a list in one string is not."""
    if not to:
        raise EmptyValue("to needs at least one recipient")
    if len(to) > MAX_RECIPIENTS:
        raise SizeExceeded(f"at most {MAX_RECIPIENTS} recipients per request")
    seen: dict[str, Mailbox] = {}
    for value in to:
        try:
            mailbox = parse_mailbox(value, field="recipient")
        except InvalidValue as exc:  # a control character, a display name too long
            raise InvalidEmail(f"recipient {value!r}: {exc.description}") from None
        seen.setdefault(mailbox.address.lower(), mailbox)
    return list(seen.values())


def check_label(label: str | None) -> str | None:
    if label is None or label == "":
        return None
    check_header_value("label", label)
    if len(label) > MAX_LABEL_CHARS:
        raise InvalidValue(f"label is longer than {MAX_LABEL_CHARS} characters")
    return label


SENDER_CACHE_SECONDS = 5.0
BATCH_RECIPIENTS = 200  # recipients (or events) per bus message
INLINE_COMPOSE_BYTES = 256 * 1024  # larger content is encoded in a worker thread


Group = tuple[list[Mailbox], Content]  # recipients, and the content they get


@dataclass(frozen=True, slots=True)
class _Accept:
    account_id: str
    contents: list[tuple[str, StoredContent]]  # (content_id, content)
    rows: list[MessageRow]
    outgoing: list[Outgoing]


_TAG = re.compile(re.escape(UNSUBSCRIBE_TAG).encode(), re.IGNORECASE)


def tagged(command: SendCommand, content: Content) -> bool:
    """Whether the body carries Devino's ``[Unsubscribe]`` tag (turns the link on)."""
    if command.as_sent is not None:
        return _TAG.search(command.as_sent.body) is not None
    return any(
        _TAG.search(text.encode("utf-8", "surrogateescape")) is not None
        for text in (content.text, content.html)
        if text
    )


def tracking_base(public_url: str, sender: SenderRow) -> str:
    """Where tracking URLs start: the sender domain's ``track.<domain>`` once its CNAME
    verifies (same scheme, port and path as POSTWIRE_PUBLIC_URL, which it points at),
    else POSTWIRE_PUBLIC_URL."""
    base = public_url.rstrip("/")
    if not sender.tracking_verified:
        return base
    parts = urlsplit(base)
    host = f"track.{sender.domain}" + (f":{parts.port}" if parts.port else "")
    return urlunsplit((parts.scheme, host, parts.path, "", ""))


def choose_tracking(
    asked: Mapping[str, bool] | None, *, unsubscribe: bool, base: str
) -> Tracking | None:
    """What a content tracks: the request's choice (or its API user's default), with the
    unsubscribe link also on when the template or a tag asks for it; None for nothing."""
    asked = asked or {}
    chosen = Tracking(
        opens=bool(asked.get("opens")),
        clicks=bool(asked.get("clicks")),
        unsubscribe=bool(asked.get("unsubscribe")) or unsubscribe,
        base=base,
    )
    return chosen if chosen.any else None


def content_groups(command: SendCommand, recipients: list[Mailbox]) -> list[Group]:
    """The distinct contents of a request and the recipients of each, in the order of the
    recipients: one without a template or with shared variables only, one per distinct
    set of values with per-recipient variables (a template rendered per set)."""
    template = command.template
    if template is None:
        return [(recipients, command.content)]
    groups: dict[tuple[tuple[str, str], ...], Group] = {}
    for to in recipients:
        values = {**command.variables, **command.recipient_variables.get(to.address.lower(), {})}
        key = tuple(sorted(values.items()))
        if key not in groups:
            rendered = render(template, values)
            content = dc_replace(
                command.content, subject=rendered.subject, text=rendered.text, html=rendered.html
            )
            groups[key] = ([], content)
        groups[key][0].append(to)
    return list(groups.values())


class Sender:
    """Accepts send commands for an account. One per ingest process."""

    def __init__(
        self,
        store: IngestStore,
        wake_relay: Callable[[], None],
        tls_rules: Callable[[str], Awaitable[Mapping[str, TlsMode]]],
        ensure_label: Callable[[str, str], Awaitable[None]],
        public_url: str = "http://127.0.0.1:8080",
    ) -> None:
        self._public_url = public_url  # tracking links' base without a tracking domain
        self._tracking: TtlCache[str, tuple[Mapping[str, bool]]] = TtlCache(SENDER_CACHE_SECONDS)
        self._ensure_label = ensure_label  # sending with a new label creates it
        self._store = store
        self._tls_rules = tls_rules  # an account's TLS policies, domain -> mode
        self._wake_relay = wake_relay
        # Senders found are remembered briefly (not those missing: a sender just added
        # works at once); one deleted in another process stops working within 5 s.
        self._senders: TtlCache[tuple[str, str], SenderRow] = TtlCache(SENDER_CACHE_SECONDS)
        self._group: Batcher[_Accept, None] = Batcher(self._accept_many, max_size=64)
        self._keyed: Batcher[KeyedRequest, Any] = Batcher(
            self._store.accept_keyed_many, max_size=64
        )
        # Suppression lookups of requests in flight together: one query.
        self._suppressions: Batcher[tuple[str, Sequence[str]], dict[str, str]] = Batcher(
            self._store.suppressed, max_size=64
        )

    async def _accept_many(self, jobs: Sequence[_Accept]) -> list[None]:
        await self._store.accept_many(
            [(j.account_id, j.rows, j.outgoing) for j in jobs],
            [
                (content_id, j.account_id, content)
                for j in jobs
                for content_id, content in j.contents
            ],
        )
        return [None] * len(jobs)

    async def _default(self, principal: Principal) -> Mapping[str, bool] | None:
        """The API user's default tracking (remembered briefly, like senders)."""
        found = self._tracking.get(principal.api_user)
        if found is None:
            stored = await self._store.api_user_tracking(principal.api_user)
            found = (json.loads(stored) if stored else {},)
            self._tracking.put(principal.api_user, found)
        return found[0] or None

    def forget_tracking(self, api_user: str) -> None:
        self._tracking.forget(lambda key: key == api_user)

    def forget_senders(self, tenant_id: str) -> None:
        self._senders.forget(lambda key: key[0] == tenant_id)

    async def _sender(self, tenant_id: str, address: str) -> SenderRow | None:
        sender = self._senders.get((tenant_id, address))
        if sender is None:
            sender = await self._store.get_sender(tenant_id, address)
            if sender is not None:
                self._senders.put((tenant_id, address), sender)
        return sender

    async def usable_sender(self, tenant_id: str, address: str) -> SenderRow:
        """The account's sender ``address`` on a domain that may send, or InvalidValue."""
        sender = await self._sender(tenant_id, address)
        if sender is None:
            raise InvalidValue(
                f"Disallowed source address: {address} is not a sender of this "
                "account (add it with POST /v1/senders)"
            )
        if sender.domain_status not in SENDING_STATES:
            raise InvalidValue(
                f"the domain {sender.domain} of the sender is not usable: its SPF and DKIM "
                f"records must verify (POST /v1/domains/{sender.domain}/verify)"
            )
        return sender

    async def send(self, principal: Principal, command: SendCommand) -> list[dict[str, str]]:
        mailbox = parse_mailbox(command.sender, field="from")
        recipients = unique_recipients(command.to)
        label = check_label(command.label)
        sender = await self.usable_sender(principal.tenant_id, mailbox.address)
        if not mailbox.name and sender.alias and command.as_sent is None:
            mailbox = Mailbox(mailbox.address, sender.alias)
        if label is not None:
            await self._ensure_label(principal.tenant_id, label)

        now = datetime.now(UTC)
        request_id = new_id()
        groups = content_groups(command, recipients)
        signing = signing_keys(sender)
        suppressed = await self._suppressions.submit(
            (principal.tenant_id, [r.address for r in recipients])
        )
        tls = await self._tls_rules(principal.tenant_id)
        default = None if command.tracking is not None else await self._default(principal)
        contents: list[tuple[str, StoredContent]] = []
        accepted: dict[str, Accepted] = {}
        rows: list[MessageRow] = []
        outgoing: list[Outgoing] = []
        for n, (members, content) in enumerate(groups):
            if command.as_sent is not None:
                prepared = command.as_sent
            elif content_size(content) > INLINE_COMPOSE_BYTES:
                # Encoding megabytes of attachments takes long enough to stall every request.
                prepared = await asyncio.to_thread(prepare, mailbox, content, now)
            else:
                prepared = prepare(mailbox, content, now)
            tracked = choose_tracking(
                command.tracking if command.tracking is not None else default,
                unsubscribe=command.unsubscribe or tagged(command, content),
                base=tracking_base(self._public_url, sender),
            )
            if tracked is not None:
                prepared = dc_replace(prepared, tracking=tracked.to_json())
            content_id = request_id if len(groups) == 1 else f"{request_id}.{n}"
            contents.append((content_id, prepared))
            made, made_rows, made_outgoing = self._per_recipient(
                principal, mailbox, members, prepared.size, command, content.subject, label,
                request_id, content_id, now, signing, suppressed, tls,
            )  # fmt: skip
            accepted.update((a.rcpt.lower(), a) for a in made)
            rows += made_rows
            outgoing += made_outgoing
        result = [accepted[r.address.lower()].as_dict() for r in recipients]

        large = any(c.size > INLINE_COMPOSE_BYTES for _, c in contents)
        if large:
            idempotency = None
            if command.idempotency_key:
                idempotency = (command.idempotency_key, command.fingerprint, result)
            earlier = await self._store.accept(
                principal.tenant_id, rows, outgoing, idempotency, contents
            )
            if earlier is not None:
                return self._replay(earlier, command)
        elif command.idempotency_key:
            # Small requests with a key (every SMTP submission with a Message-ID) are
            # committed together too, each claiming its key in the same statement.
            earlier = await self._keyed.submit(
                KeyedRequest(
                    principal.tenant_id, command.idempotency_key, command.fingerprint,
                    result, rows, outgoing, contents,
                )
            )  # fmt: skip
            if earlier is not None:
                return self._replay(earlier, command)
        else:
            # Small requests without an idempotency key are committed together with the
            # others in flight: one statement for many requests, their contents included.
            await self._group.submit(_Accept(principal.tenant_id, contents, rows, outgoing))
        self._wake_relay()
        ACCEPTED.labels("smtp" if command.method is SendMethod.SMTP else "http").inc(len(rows))
        return result

    @staticmethod
    def _replay(earlier: Any, command: SendCommand) -> list[dict[str, str]]:
        if bytes(earlier["request_hash"]) != command.fingerprint:
            raise InvalidValue(
                "this Idempotency-Key was used for a different request; use a new key"
            )
        return list(earlier["response"])

    @staticmethod
    def _per_recipient(
        principal: Principal,
        mailbox: Mailbox,
        recipients: list[Mailbox],
        size: int,
        command: SendCommand,
        subject: str,
        label: str | None,
        request_id: str,
        content_id: str,
        now: datetime,
        signing: list[DkimKey],
        suppressed: dict[str, str],
        tls: Mapping[str, TlsMode],
    ) -> tuple[list[Accepted], list[MessageRow], list[Outgoing]]:
        accepted: list[Accepted] = []
        rows: list[MessageRow] = []
        events: list[MailEvent] = []
        by_domain: dict[str, list[Recipient]] = {}
        for to in recipients:
            rcpt = to.address
            env_id = new_id()
            msg_id = command.message_id or f"<{env_id}@{mailbox.domain}>"
            reason = suppressed.get(rcpt.lower())
            status = "queued" if reason is None else "suppressed"
            accepted.append(Accepted(env_id, msg_id, rcpt, status))
            rows.append(
                MessageRow(
                    env_id, request_id, principal.api_user, msg_id, mailbox.address, rcpt,
                    subject, label, status, size, now,
                )
            )  # fmt: skip
            request = MailEvent(
                event_id=f"{env_id}:request",
                event=EventType.REQUEST,
                env_id=env_id,
                msg_id=msg_id,
                tenant_id=principal.tenant_id,
                account=mailbox.address,
                sender=mailbox.address,
                rcpt=rcpt,
                label=label,
                subject=subject,
                method=command.method,
                template_id=command.template_id,
                task_id=command.task_id,
                api_user=principal.api_user,
                recv_time=now,
                time=now,
            )
            events.append(request)
            if reason is not None:  # never reaches SMTP: terminal at once, as invalid
                events.append(suppressed_event(request, reason))
                continue
            domain = rcpt.rpartition("@")[2].lower()
            by_domain.setdefault(domain, []).append(
                Recipient(
                    env_id=env_id,
                    msg_id=msg_id,
                    rcpt=rcpt,
                    to=mailbox_value(to, "To") if to.name and command.as_sent is None else None,
                )
            )
        batches = [
            RecipientBatch(
                request_id=request_id,
                content_id=content_id,
                tenant_id=principal.tenant_id,
                sender=mailbox.address,
                label=label,
                domain=domain,
                recv_time=now,
                recipients=chunk,
                dkim=signing,
                tls=mode_for(tls, domain),
            )
            for domain, found in by_domain.items()
            for chunk in chunks(found, BATCH_RECIPIENTS)
        ]
        outgoing = [
            Outgoing(topology.OUTBOUND.name, topology.OUTBOUND_KEY, OutboundBatches(batches=chunk))
            for chunk in chunks(batches, 16)
        ]
        outgoing.extend(
            Outgoing(topology.EVENTS.name, "ingest.request", EventBatch(events=chunk))
            for chunk in chunks(events, BATCH_RECIPIENTS)
        )
        return accepted, rows, outgoing


T = TypeVar("T")


def chunks(items: list[T], size: int) -> list[list[T]]:
    return [items[i : i + size] for i in range(0, len(items), size)]


def content_size(content: Content) -> int:
    return (
        len(content.text or "")
        + len(content.html or "")
        + sum(len(a.data) for a in content.attachments)
    )
