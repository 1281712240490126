"""Tracking through real mail: HTML mail delivered to the loopback MX with its pixel,
links and unsubscribe link fetched by a real HTTP client; the DKIM signature verifies
over the rewritten copy; forged tokens give nothing; an unsubscribe suppresses the next
send. Devino's ``[Unsubscribe]`` tag works over SMTP submission too."""

from __future__ import annotations

import re
from email.message import EmailMessage
from typing import Any
from urllib.parse import urlsplit

import dkim
import httpx
import pytest

from postwire_testkit.api import Tenant, envelope
from postwire_testkit.dkim import dns_lookup, publish_dkim
from postwire_testkit.dns import LoopbackDns
from postwire_testkit.platform import PlatformProcess
from postwire_testkit.smtp import Received, SmtpSink
from postwire_testkit.wait import eventually

from .test_domains import api, new_domain, publish, records, result, verify
from .test_submission import login, transaction

HTML = (
    '<html><body><p>Hello <a href="https://shop.example/a?x=1&amp;y=2">one</a>, '
    "<a href='https://shop.example/b'>two</a>, "
    '<a href="mailto:help@shop.example">write to us</a></p></body></html>'
)
BROWSER = "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Thunderbird/128.0"


@pytest.fixture
def submission_port(env: dict[str, str], platform: PlatformProcess) -> int:
    return int(env["POSTWIRE_SMTP_PORT"])


async def delivered(mx: SmtpSink, message: dict[str, str]) -> Received:
    def mine() -> list[Received]:
        return [r for r in mx.for_rcpt(message["rcpt"]) if message["env_id"].encode() in r.data]

    [received] = await eventually(mine, what=f"mail to {message['rcpt']}")
    return received


def html_of(received: Received) -> str:
    body = received.message.get_body(("html",))
    assert isinstance(body, EmailMessage)
    return str(body.get_content())


async def timeline(tenant: Tenant, env_id: str) -> list[dict[str, Any]]:
    answer = await tenant.message(env_id)
    events: list[dict[str, Any]] = envelope(answer)["Result"]["events"]
    return events


async def test_opens_and_clicks_of_delivered_mail_become_events(
    tenant: Tenant, other_tenant: Tenant, mx: SmtpSink, dns: LoopbackDns
) -> None:
    await publish_dkim(tenant, dns)
    rcpt = f"reader.{tenant.name}@example.org"
    label = "newsletter"
    answer = await tenant.send(
        [rcpt],
        html=HTML,
        label=label,
        tracking={"opens": True, "clicks": True, "unsubscribe": False},
    )
    assert answer.status_code == 202, answer.text
    [message] = envelope(answer)["Result"]["messages"]
    received = await delivered(mx, message)
    assert dkim.verify(received.data, dnsfunc=dns_lookup(dns))  # signed after rewriting
    assert received.message["List-Unsubscribe"] is None  # unsubscribe was not asked for
    html = html_of(received)
    [pixel] = re.findall(r'<img src="([^"]+/t/o/[^"]+\.gif)"', html)
    clicks = re.findall(r"""href=["'](http[^"']+/t/c/[^"']+)["']""", html)
    assert len(clicks) == 2
    assert 'href="mailto:help@shop.example"' in html  # not tracked
    assert "shop.example/a" not in html
    assert "shop.example/b" not in html

    async with httpx.AsyncClient(headers={"User-Agent": BROWSER}) as browser:
        gifs = [await browser.get(pixel) for _ in range(2)]
        assert {(g.status_code, g.headers["content-type"]) for g in gifs} == {(200, "image/gif")}
        first = await browser.get(clicks[0])
        assert (first.status_code, first.headers["location"]) == (
            302,
            "https://shop.example/a?x=1&y=2",
        )
        second = await browser.get(clicks[1])
        assert second.headers["location"] == "https://shop.example/b"
        # Forged tokens: the same GIF and no event; no redirect anywhere.
        forged_pixel = await browser.get(pixel.replace("/t/o/", "/t/o/x"))
        assert forged_pixel.content == gifs[0].content
        token = clicks[0].rsplit("/", 1)[1]
        body, mac = token.split(".")
        for bad in (f"{body}.{mac[::-1]}", f"{body[:-2]}.{mac}", "nothing", "a.b"):
            refused = await browser.get(clicks[0].replace(token, bad))
            assert refused.status_code == 404
            assert "location" not in refused.headers

    async def tracked() -> list[dict[str, Any]] | None:
        events = await timeline(tenant, message["env_id"])
        hits = [e for e in events if e["event"] in ("open", "click")]
        return events if len(hits) == 5 else None

    async with httpx.AsyncClient(headers={"User-Agent": BROWSER}) as scanner:
        assert (await scanner.head(pixel)).status_code == 200  # a HEAD is a machine's

    events = await eventually(tracked, what="two opens and two clicks recorded")
    opens = [e for e in events if e["event"] == "open"]
    assert [e["type"] for e in opens] == ["Track:Open"] * 3
    # Who opened: the reader's address and client, and the HEAD flagged as a machine's.
    assert {(e["ip"], e["user_agent"], e["device"]) for e in opens} == {
        ("127.0.0.1", BROWSER, "Linux")
    }
    assert sorted(str(e["machine"]) for e in opens) == ["None", "None", "scanner"]
    urls = sorted(e["url"] for e in events if e["event"] == "click")
    assert urls == ["https://shop.example/a?x=1&y=2", "https://shop.example/b"]
    assert {"request", "delivered"} <= {e["event"] for e in events}

    # The statistics count them from the events: each message's first human open and
    # click once, the machine's open apart; another account sees none of it.
    async def tracking_row(who: Tenant) -> dict[str, Any] | None:
        answer = await who.client("events").get(
            "/v1/stats/tracking", params={"granularity": "day", "label": label}
        )
        rows = envelope(answer)["Result"]["rows"]
        return rows[0] if rows and rows[0]["machine_opens"] == 1 else None

    row = await eventually(lambda: tracking_row(tenant), what="tracking statistics")
    assert {k: v for k, v in row.items() if k != "period"} == {
        "delivered": 1, "opens": 2, "unique_opens": 1, "clicks": 2, "unique_clicks": 1,
        "machine_opens": 1, "machine_clicks": 0, "spam_reports": 0, "unsubscribes": 0,
    }  # fmt: skip
    sending = envelope(
        await tenant.client("events").get("/v1/stats/sending", params={"label": label})
    )["Result"]["rows"]
    assert [(r["requests"], r["delivered"], r["success_rate"]) for r in sending] == [(1, 1, 1.0)]
    assert await tracking_row(other_tenant) is None
    other = await other_tenant.client("events").get("/v1/stats/tracking", params={"label": label})
    assert envelope(other)["Result"]["rows"] == []


async def test_unsubscribe_by_page_or_one_click_suppresses_the_next_send(
    tenant: Tenant, mx: SmtpSink, dns: LoopbackDns
) -> None:
    await publish_dkim(tenant, dns)
    rcpts = [
        f"page.{tenant.name}@example.org",
        f"oneclick.{tenant.name}@example.net",
        f"looker.{tenant.name}@example.org",  # only looks at the page
    ]
    answer = await tenant.send(rcpts, html=HTML, tracking={"unsubscribe": True})
    assert answer.status_code == 202, answer.text
    by_page, by_post, looker = envelope(answer)["Result"]["messages"]
    lookup = dns_lookup(dns)
    urls = []
    for message in (by_page, by_post, looker):
        received = await delivered(mx, message)
        assert dkim.verify(received.data, dnsfunc=lookup)
        copy = received.message
        assert copy["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
        signed = re.search(r"\bh=([^;]+)", str(copy["DKIM-Signature"]))
        assert signed is not None
        signed_headers = {h.strip().lower() for h in re.sub(r"\s", "", signed[1]).split(":")}
        assert {"list-unsubscribe", "list-unsubscribe-post"} <= signed_headers  # RFC 8058
        header = str(copy["List-Unsubscribe"])
        assert header.startswith("<http")
        assert header.endswith(">")
        url = header[1:-1]
        assert url in html_of(received)  # the footer's link is the same
        urls.append(url)

    async with httpx.AsyncClient() as browser:
        page = await browser.get(urls[0], headers={"Accept-Language": "zh-CN,zh;q=0.9"})
        assert page.status_code == 200
        assert "退订" in page.text
        assert rcpts[0] in page.text
        english = await browser.get(urls[0], headers={"Accept-Language": "en-GB"})
        assert "nsubscribe" in english.text
        looked = await browser.get(urls[2])  # what a link scanner does too
        assert looked.status_code == 200
        confirmed = await browser.post(urls[0], data={"confirm": "yes"})
        assert confirmed.status_code == 200, confirmed.text
        for _ in range(2):  # a mailbox provider's RFC 8058 POST, repeated
            one_click = await browser.post(urls[1], data={"List-Unsubscribe": "One-Click"})
            assert one_click.status_code == 200, one_click.text
        forged = await browser.post(urls[1][:-4] + "AAAA", data={"List-Unsubscribe": "One-Click"})
        assert forged.status_code == 404

    for message in (by_page, by_post):

        async def unsubscribed(env_id: str = message["env_id"]) -> list[str] | None:
            events = [e["event"] for e in await timeline(tenant, env_id)]
            return events if "unsubscribe" in events else None

        events = await eventually(unsubscribed, what="the unsubscribe recorded")
        assert events.count("unsubscribe") == 1

    async def suppressed() -> list[dict[str, str]] | None:
        again = envelope(await tenant.send(rcpts))["Result"]["messages"]
        return again if all(m["status"] == "suppressed" for m in again[:2]) else None

    again = await eventually(suppressed, what="the next send answered suppressed")
    assert again[2]["status"] == "queued"  # looking at the page unsubscribed nobody
    assert "unsubscribe" not in [e["event"] for e in await timeline(tenant, looker["env_id"])]


async def test_an_unsubscribe_tag_sent_over_smtp_becomes_the_link(
    tenant: Tenant, mx: SmtpSink, dns: LoopbackDns, submission_port: int
) -> None:
    await publish_dkim(tenant, dns)
    rcpt = f"smtp-tag.{tenant.name}@example.org"
    data = (
        f"From: {tenant.sender}\r\nTo: {rcpt}\r\nSubject: tagged\r\nMIME-Version: 1.0\r\n"
        "Content-Type: text/html; charset=utf-8\r\n\r\n"
        '<p>Bye? Click <a href="[Unsubscribe]">here</a>.</p>\r\n'
    ).encode()
    client = login(submission_port, tenant)
    try:
        answer = transaction(client, tenant.sender, [rcpt], data)
    finally:
        client.quit()
    assert answer.startswith("250 "), answer
    env_id = answer.split("queued as ")[1].strip()
    received = await delivered(mx, {"rcpt": rcpt, "env_id": env_id})
    assert dkim.verify(received.data, dnsfunc=dns_lookup(dns))
    url = str(received.message["List-Unsubscribe"])[1:-1]
    html = html_of(received)
    assert "[Unsubscribe]" not in html
    assert f'<a href="{url}">here</a>' in html
    assert received.message["Subject"] == "tagged"  # the rest is as sent


async def test_links_are_served_under_the_verified_tracking_domain(
    tenant: Tenant, mx: SmtpSink, dns: LoopbackDns
) -> None:
    name, wanted = await new_domain(tenant, dns, "tracked")
    for record in wanted.values():
        publish(dns, record)
    shown = await verify(tenant, name)
    assert records(shown)["tracking"]["status"] == "ok", shown
    await result(await api(tenant).post("/v1/senders", json={"address": f"news@{name}"}), 201)
    rcpt = f"domain.{tenant.name}@example.org"
    answer = await tenant.send(
        [rcpt], **{"from": f"news@{name}"}, html=HTML, tracking={"clicks": True}
    )
    assert answer.status_code == 202, answer.text
    [message] = envelope(answer)["Result"]["messages"]
    html = html_of(await delivered(mx, message))
    platform = urlsplit(tenant.urls.events)
    clicks = re.findall(r"""href=["'](http[^"']+/t/c/[^"']+)["']""", html)
    assert {urlsplit(c).netloc for c in clicks} == {f"track.{name}:{platform.port}"}
    # The CNAME points at us: the request reaches the same service by that host name.
    path = urlsplit(clicks[1]).path
    async with httpx.AsyncClient() as browser:
        followed = await browser.get(
            f"{tenant.urls.events}{path}", headers={"Host": f"track.{name}"}
        )
    assert followed.status_code == 302
    assert followed.headers["location"] == "https://shop.example/b"
