"""A request's content is stored once; each recipient's copy is rendered from it at send
time, byte for byte: the common head, the recipient's own headers, the body."""

from __future__ import annotations

import base64

import asyncpg

from postwire_common.content import StoredContent, render
from postwire_testkit.api import Tenant, envelope
from postwire_testkit.smtp import SmtpSink


async def test_content_is_stored_once_and_every_copy_is_rendered_from_it(
    tenant: Tenant, mx: SmtpSink, db: asyncpg.Connection
) -> None:
    rcpts = [
        f"{name}.{tenant.name}@example.{tld}"
        for name in ("ann", "bob", "cy")
        for tld in ("org", "net")
    ]
    attachment = base64.b64encode(bytes(range(256)) * 40).decode()
    answer = await tenant.send(
        rcpts,
        html="<p>Grüße — 日本</p>",
        attachments=[{"filename": "a.bin", "content": attachment}],
        headers={"X-Order": "42"},
    )
    messages = envelope(answer)["Result"]["messages"]
    for m in messages:
        assert await tenant.wait_for_status(m["env_id"], "delivered")

    request_ids = await db.fetch(
        "SELECT DISTINCT request_id FROM ingest.messages WHERE env_id = ANY($1::text[])",
        [m["env_id"] for m in messages],
    )
    assert len(request_ids) == 1
    rows = await db.fetch(
        "SELECT head, body FROM ingest.contents WHERE id = $1", request_ids[0]["request_id"]
    )
    assert len(rows) == 1  # once, not once per recipient
    content = StoredContent(rows[0]["head"], rows[0]["body"])

    for m in messages:
        [received] = mx.for_rcpt(m["rcpt"])
        expected = render(content, m["rcpt"], m["msg_id"], m["env_id"])
        # aiosmtpd hands over the data with CRLF line ends, without the final dot.
        # The copy as rendered, after the DKIM-Signature delivery puts in front of it.
        assert received.data.startswith(b"DKIM-Signature: ")
        assert received.data.endswith(expected)
        assert received.data.index(b"\r\nFrom: ") + 2 == len(received.data) - len(expected)
        assert received.message["To"] == m["rcpt"]
        assert received.message["Message-ID"] == m["msg_id"]
        assert received.message["X-Order"] == "42"


async def test_recipients_with_display_names_get_them_in_their_own_to_header(
    tenant: Tenant, mx: SmtpSink
) -> None:
    zoe, ann = f"zoe.{tenant.name}@example.org", f"ann.{tenant.name}@example.org"
    answer = await tenant.send([f'"Zoë Ü" <{zoe}>', f"Ann Lee <{ann.upper()}>"])
    messages = envelope(answer)["Result"]["messages"]
    assert [m["rcpt"] for m in messages] == [zoe, ann.upper().split("@")[0] + "@example.org"]
    for m in messages:
        assert await tenant.wait_for_status(m["env_id"], "delivered")
    [to_zoe] = mx.for_rcpt(zoe)
    assert to_zoe.rcpt_tos == [zoe]  # the envelope carries the bare address
    raw_to = to_zoe.data.split(b"\r\nTo: ", 1)[1].split(b"\r\nMessage-ID:", 1)[0]
    assert raw_to.isascii()  # RFC 2047 on the wire
    assert b"=?utf-8?" in raw_to
    assert str(to_zoe.message["To"]) == f"Zoë Ü <{zoe}>"
    [to_ann] = mx.for_rcpt(messages[1]["rcpt"])
    assert str(to_ann.message["To"]) == f"Ann Lee <{messages[1]['rcpt']}>"
