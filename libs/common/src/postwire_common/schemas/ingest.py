"""Messages ingest puts on the bus (besides request events)."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from pydantic import BaseModel, ConfigDict, Field


class Recipient(BaseModel):
    """One recipient message of a request: ids only, never content."""

    model_config = ConfigDict(frozen=True)

    env_id: str = Field(description="The recipient message's id.")
    msg_id: str = Field(description="Message-ID header value, with angle brackets.")
    rcpt: str = Field(description="The recipient address (RCPT TO, and the To header).")
    to: str | None = Field(
        None,
        description="The To header's value when the recipient was given with a display "
        "name (RFC 2047-encoded, ASCII); otherwise the To header is the address.",
    )


class DkimKey(BaseModel):
    """A key delivery signs the batch's copies with: the domain's RSA key and, where the
    account turned it on and its record verifies, its Ed25519 key (RFC 8463), in that
    order. The private key is as ingest stores it, encrypted with
    ``POSTWIRE_SECRET_KEYS``: the bus never carries it in clear."""

    model_config = ConfigDict(frozen=True)

    domain: str = Field(description="The signing domain (DKIM d=): the sender's domain.")
    selector: str = Field(description="DKIM s=: the key is published at <selector>._domainkey.")
    private_key: str = Field(
        description="The PKCS#8 PEM private key, RSA or Ed25519 (the signature's algorithm "
        "follows from it), encrypted (fernet:...)."
    )


class TlsMode(StrEnum):
    """How delivery uses TLS towards a recipient domain (the account's TLS policy)."""

    REQUIRE = "require"  # STARTTLS with a certificate valid for the MX host, or fail
    OPPORTUNISTIC = "opportunistic"  # STARTTLS when offered, unverified; else plain text
    NONE = "none"  # never STARTTLS


class RecipientBatch(BaseModel):
    """Recipients of one request that go to one destination domain.

    The content (body, attachments, common headers) was stored once under
    ``content_id`` in the content store; delivery renders each recipient's copy from it at
    send time. One bus message carries up to a few hundred recipients, so a request to
    100,000 addresses is a few hundred small messages, not 100,000 MIME copies.
    """

    model_config = ConfigDict(frozen=True)

    request_id: str = Field(description="The request these recipients came from.")
    content_id: str = Field(description="Key of the stored content (head and body).")
    tenant_id: str = Field(description="Account (tenant) the messages belong to.")
    sender: str = Field(description="From address; also MAIL FROM unless VERP applies.")
    label: str | None = Field(None, description="Label given at send time.")
    domain: str = Field(description="Recipient domain shared by every recipient here.")
    recv_time: datetime = Field(description="When ingest accepted the request (UTC).")
    recipients: list[Recipient] = Field(min_length=1, description="The recipients.")
    dkim: list[DkimKey] = Field(
        default_factory=list,
        description="Keys to sign every copy with (one DKIM-Signature each); empty: unsigned.",
    )
    tls: TlsMode = Field(
        TlsMode.OPPORTUNISTIC,
        description="TLS towards the domain's MX hosts, from the account's TLS policy when "
        "the request was accepted: require (verified STARTTLS or the message fails), "
        "opportunistic (STARTTLS when offered) or none (plain text).",
    )


class OutboundBatches(BaseModel):
    """The bus message on ``postwire.outbound``: recipient batches of one or more
    requests. Ingest writes one per request; its outbox relay concatenates those that are
    published together (``broker/outbox.py``), so under load one bus message carries the
    recipients of many requests."""

    model_config = ConfigDict(frozen=True)

    batches: list[RecipientBatch] = Field(min_length=1, description="Recipient batches.")
