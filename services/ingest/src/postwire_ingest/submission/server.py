"""The SMTP submission server (the Devino seed's SMTP API) on aiosmtpd.

::

    client ──STARTTLS (587) or TLS (465)──▶ AUTH PLAIN/LOGIN: api_user / api_key (throttled)
        ──MAIL FROM──▶ a sender of the account on a usable domain, else Disallowed source
        ──RCPT TO──▶ each checked as over HTTP, else Invalid recipient address (max 100)
        ──DATA──▶ ≤ 10 MB, no forbidden attachment in any part, From a sender of the account
        ──▶ Sender.send: one message per recipient, content stored once as sent ──▶ 250

``250`` is answered only after the messages are committed, as on the HTTP path. Every
refusal of a message is ``554 Transaction failed: <reason>`` with the seed's texts. Nothing
is relayed without AUTH (MAIL is refused before it), and an account sends only from its own
senders. SMTP smuggling: the session (``postwire_common.smtpd``) ends DATA only at
CRLF.CRLF and drops what a client sent before STARTTLS completed; bare CR and LF are then
normalised inside the message (``message.py``), so no end-of-data form can split it
downstream.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import ssl
from collections import Counter
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any, AnyStr, cast

import asyncpg
from aiosmtpd.smtp import AuthResult, Envelope, LoginPassword, Session

from postwire_common.addresses import parse_mailbox
from postwire_common.content import StoredContent
from postwire_common.errors import AuthorizationFailed, InvalidValue, PostwireError
from postwire_common.identity import Identity, Principal
from postwire_common.ids import new_id
from postwire_common.observability.metrics import SUBMISSION_AUTH, SUBMISSION_SESSIONS
from postwire_common.schemas import SendMethod
from postwire_common.smtpd import CappedSMTP
from postwire_ingest.compose import Content
from postwire_ingest.limits import MAX_MESSAGE_BYTES, MAX_RECIPIENTS
from postwire_ingest.sending import SendCommand, Sender
from postwire_ingest.submission.message import Submitted, parse
from postwire_ingest.submission.parts import TooComplex, forbidden_attachment
from postwire_ingest.submission.throttle import MAX_DELAY, AuthFailures

log = logging.getLogger("postwire.ingest.submission")

FAILED = "554 Transaction failed: "
MUST_AUTHENTICATE = FAILED + "Must authenticate before sending mail"
INTERNAL = FAILED + "Internal server error"
TOO_LARGE = FAILED + "Message exceeds fixed size limit"
# aiosmtpd's own refusals, answered with the seed's texts instead.
_REPLIES = {
    "530 5.7.0 Authentication required": MUST_AUTHENTICATE,
    "552 Error: message size exceeds fixed maximum message size": TOO_LARGE,
    "552 Error: Too much mail data": TOO_LARGE,
}
INLINE_BYTES = 256 * 1024  # larger messages are parsed in a worker thread
INVALID_CREDENTIALS = "535 5.7.8 Authentication credentials invalid"


def _decoded(value: bytes) -> str | None:
    try:
        text = value.decode("utf-8")
    except UnicodeDecodeError:
        return None
    return text if text and text.isprintable() else None


class _Session(CappedSMTP):
    """A submission session: seed replies, and AUTH checked against API users."""

    def __init__(self, handler: Submission, open_per_ip: Counter[str], **kw: Any) -> None:
        super().__init__(
            handler,
            open_per_ip,
            handler.per_ip,
            SUBMISSION_SESSIONS.labels("too_many_from_address").inc,
            # Capture the credentials only; they are checked, asynchronously, in _verify.
            authenticator=lambda *args: AuthResult(success=True, auth_data=args[-1]),
            **kw,
        )
        self._submission = handler

    async def push(self, status: AnyStr) -> None:
        if isinstance(status, str):
            status = _REPLIES.get(status, status)
        await super().push(status)

    async def auth_PLAIN(self, _: Any, args: list[str]) -> AuthResult:
        return await self._verify(await super().auth_PLAIN(_, args))

    async def auth_LOGIN(self, _: Any, args: list[str]) -> AuthResult:
        return await self._verify(await super().auth_LOGIN(_, args))

    async def _verify(self, given: AuthResult) -> AuthResult:
        if not given.success or not isinstance(given.auth_data, LoginPassword):
            return given  # malformed exchange: aiosmtpd has answered it
        # A slowed answer must not count as the client's idle time.
        self._reset_timeout(self._timeout_duration + MAX_DELAY)
        return await self._submission.authenticate(
            self.peer_ip, given.auth_data.login, given.auth_data.password
        )


class Submission:
    """The aiosmtpd handler: every check of a submitted message, then Sender.send."""

    def __init__(
        self,
        sender: Sender,
        identity: Identity,
        pool: asyncpg.Pool,  # failed AUTH attempts (shared by every process)
        hostname: str,
        *,
        timeout: float = 60.0,
        per_ip: int = 50,
    ) -> None:
        self._sender = sender
        self._identity = identity
        self._failures = AuthFailures(pool)
        self.hostname = hostname
        self.timeout = timeout  # idle seconds (no complete command, no DATA line)
        self.per_ip = per_ip  # sessions one source address may hold

    async def authenticate(self, ip: str, login: bytes, password: bytes) -> AuthResult:
        user, key = _decoded(login), _decoded(password)
        try:
            failures = await self._failures.recent(ip, user or "")
            if failures.locked:
                SUBMISSION_AUTH.labels("locked").inc()
                return AuthResult(
                    success=False,
                    handled=False,
                    message="454 4.7.0 Too many failed logins from your address, try again later",
                )
            if user is None or key is None:
                raise AuthorizationFailed("malformed credentials")
            principal = await self._identity.authenticate(user, key)
        except AuthorizationFailed:
            # The answer to a wrong guess comes later the more guesses came before it.
            SUBMISSION_AUTH.labels("failed").inc()
            await self._failures.record(ip, user or "")
            await asyncio.sleep(failures.delay)
            return AuthResult(success=False, handled=False, message=INVALID_CREDENTIALS)
        except Exception:
            log.exception("AUTH could not be checked")
            SUBMISSION_AUTH.labels("error").inc()
            return AuthResult(
                success=False, handled=False, message="454 4.7.0 Temporary authentication failure"
            )
        SUBMISSION_AUTH.labels("ok").inc()
        return AuthResult(success=True, auth_data=principal)

    async def _usable(self, principal: Principal, address: str) -> bool:
        try:
            mailbox = parse_mailbox(address, field="from")
            await self._sender.usable_sender(principal.tenant_id, mailbox.address)
        except PostwireError:
            return False
        return True

    async def handle_MAIL(
        self,
        server: _Session,
        session: Session,
        envelope: Envelope,
        address: str,
        mail_options: list[str],
    ) -> str:
        principal = cast(Principal, session.auth_data)
        try:
            usable = await self._usable(principal, address)
        except Exception:
            log.exception("MAIL FROM could not be checked")
            return INTERNAL
        if not usable:
            return FAILED + f"Disallowed source address: {address}"
        envelope.mail_from = address
        envelope.mail_options.extend(mail_options)
        return "250 2.1.0 OK"

    async def handle_RCPT(
        self,
        server: _Session,
        session: Session,
        envelope: Envelope,
        address: str,
        rcpt_options: list[str],
    ) -> str:
        if len(envelope.rcpt_tos) >= MAX_RECIPIENTS:
            return f"452 4.5.3 Too many recipients (at most {MAX_RECIPIENTS} per message)"
        try:
            parse_mailbox(address, field="recipient")
        except PostwireError:
            return FAILED + f"Invalid recipient address: {address}"
        envelope.rcpt_tos.append(address)
        envelope.rcpt_options.extend(rcpt_options)
        return "250 2.1.5 OK"

    async def handle_DATA(self, server: _Session, session: Session, envelope: Envelope) -> str:
        principal = cast(Principal, session.auth_data)
        data = envelope.original_content or b""
        try:
            return await self._accept(principal, envelope.mail_from or "", envelope.rcpt_tos, data)
        except PostwireError as exc:
            return FAILED + exc.description.replace("\r", " ").replace("\n", " ")
        except Exception:
            log.exception("a submitted message was not accepted")
            return INTERNAL

    async def _accept(
        self, principal: Principal, mail_from: str, rcpts: Sequence[str], data: bytes
    ) -> str:
        domain = mail_from.rpartition("@")[2]
        now = datetime.now(UTC)

        def examine() -> tuple[str | None, Submitted | None]:
            try:
                found = forbidden_attachment(data)
            except TooComplex as exc:
                raise InvalidValue(
                    f"the message cannot be checked for attachments: {exc}"
                ) from None
            return found, None if found else parse(data, mail_from, now, f"<{new_id()}@{domain}>")

        if len(data) > INLINE_BYTES:
            forbidden, submitted = await asyncio.to_thread(examine)
        else:
            forbidden, submitted = examine()
        if forbidden or submitted is None:
            return FAILED + f"Not allowed attachement type {forbidden}"
        for author in submitted.authors:
            if not await self._usable(principal, author):
                return FAILED + f"Disallowed source address: {author}"
        # A client that did not see our 250 sends the same message again: with its own
        # Message-ID and the same recipients, that is the same submission (24 h).
        key = None
        if submitted.message_id_given:
            scope = "\0".join([submitted.message_id, *sorted(r.lower() for r in rcpts)])
            key = "smtp:" + hashlib.sha256(scope.encode("utf-8", "surrogateescape")).hexdigest()
        command = SendCommand(
            sender=submitted.authors[0] if submitted.authors else mail_from,
            to=list(rcpts),
            content=Content(subject=submitted.subject),
            method=SendMethod.SMTP,
            as_sent=StoredContent(b"", submitted.raw),
            message_id=submitted.message_id,
            idempotency_key=key,
            fingerprint=hashlib.sha256(data).digest(),
        )
        accepted = await self._sender.send(principal, command)
        ids = " ".join(a["env_id"] for a in accepted)
        if len(ids) > 400:
            ids = f"{len(accepted)} messages"
        return f"250 2.0.0 OK queued as {ids}"


async def serve(
    submission: Submission,
    host: str,
    port: int,
    context: ssl.SSLContext,
    *,
    implicit_tls: bool,
    auth_require_tls: bool,
) -> asyncio.Server:
    """Listen on ``host:port``: STARTTLS offered, or (``implicit_tls``) TLS from the start."""
    open_per_ip: Counter[str] = Counter()
    loop = asyncio.get_running_loop()
    return await loop.create_server(
        lambda: _Session(
            submission,
            open_per_ip,
            hostname=submission.hostname,
            ident="postwire",
            data_size_limit=MAX_MESSAGE_BYTES,
            enable_SMTPUTF8=True,
            decode_data=False,
            timeout=submission.timeout,
            auth_required=True,
            # Under implicit TLS the whole session is encrypted: aiosmtpd only knows
            # about STARTTLS, so it must not be asked to require it.
            auth_require_tls=auth_require_tls and not implicit_tls,
            tls_context=None if implicit_tls else context,
        ),
        host=host,
        port=port,
        ssl=context if implicit_tls else None,
        reuse_port=True,
    )
