"""The tracking URLs through events' own HTTP app on the real PostgreSQL and RabbitMQ:
tokens signed with the service's keys, a message recorded from its request event, its
content in the content store; what each hit writes to the outbox, and at the end what
reaches the bus and comes back as recorded events and a suppression."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from functools import partial
from typing import Any

import asyncpg
import httpx
import pytest

from postwire_common.config import Settings
from postwire_common.content import ContentStore, StoredContent
from postwire_common.crypto import generate_key, keyring
from postwire_common.http.app import build_app
from postwire_common.schemas import DeliveryStatus, EventType, MailEvent
from postwire_common.tracking.tokens import PURPOSE, Claim, Kind, TokenSigner, link_check
from postwire_events.app import EventsService
from postwire_events.store import EventsStore
from postwire_events.tracking_api import PIXEL
from postwire_events.tracking_hits import Hit, TrackingHits
from postwire_testkit.infra import migrated_database, temp_vhost, unique_name
from postwire_testkit.wait import eventually

pytestmark = pytest.mark.integration

HTML = (
    b"MIME-Version: 1.0\r\nContent-Type: text/html; charset=utf-8\r\n"
    b"Content-Transfer-Encoding: 8bit\r\n\r\n"
    b'<p><a href="https://example.org/a?x=1&amp;y=2">one</a> '
    + "<a href='https://例子.cn/路径'>two</a> <a href=\"mailto:x@y\">no</a></p>\r\n".encode()
)
FIRST, SECOND = "https://example.org/a?x=1&y=2", "https://xn--fsqu00a.cn/%E8%B7%AF%E5%BE%84"
LINKS = ["https://example.org/a?x=1&y=2", "https://例子.cn/路径"]  # as the HTML has them
CHROME = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 Chrome/131.0 Safari/537.36"


@dataclass
class Platform:
    service: EventsService
    client: httpx.AsyncClient
    signer: TokenSigner
    pool: asyncpg.Pool


@dataclass(frozen=True)
class Sent:
    tenant: str
    env_id: str
    content_id: str
    rcpt: str

    def claim(self, kind: Kind, n: int = 0, *, tenant: str | None = None) -> Claim:
        # A click's token names its link's hash, as delivery writes it.
        link = link_check(LINKS[n]) if kind is Kind.CLICK and n < len(LINKS) else ""
        return Claim(kind, tenant or self.tenant, self.env_id, self.content_id, n, link)


@pytest.fixture(scope="module")
async def platform() -> AsyncIterator[Platform]:
    async with migrated_database() as url:
        with temp_vhost() as vhost:
            settings = Settings(
                database_url=url, broker_url=vhost, secret_keys=generate_key(), env="development"
            )
            service = EventsService(settings)
            await service.pool
            signer = TokenSigner(keyring(settings).derived(PURPOSE))
            transport = httpx.ASGITransport(app=build_app(settings, [service]))
            async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
                yield Platform(service, client, signer, service.pool)
            if service._started:
                await service.stop()
            else:
                await service.pool.close()


async def sent(platform: Platform, *, recorded: bool = True, stored: bool = True) -> Sent:
    """A message delivered an hour ago (out of the scanner window), and its content."""
    tenant, env_id, content_id = unique_name("t"), unique_name("E"), unique_name("C")
    rcpt = "Reader@Example.org"
    if stored:
        await ContentStore(platform.pool).put(
            content_id, tenant, StoredContent(b"Subject: hi\r\n", HTML)
        )
    if recorded:
        then = datetime.now(UTC) - timedelta(hours=1)
        common: dict[str, Any] = {
            "env_id": env_id, "msg_id": f"<{env_id}@x>", "tenant_id": tenant,
            "account": "news@shop.example", "sender": "news@shop.example", "rcpt": rcpt,
            "label": "promo", "recv_time": then,
        }  # fmt: skip
        request = MailEvent(
            event_id=f"{env_id}:request", event=EventType.REQUEST, time=then, **common
        )
        delivered = MailEvent(
            event_id=f"{env_id}:1:delivered", event=EventType.DELIVERED,
            status=DeliveryStatus.DELIVERED, time=then, **common,
        )  # fmt: skip
        await EventsStore(platform.pool).record_many([request, delivered])
    return Sent(tenant, env_id, content_id, rcpt)


async def announced(pool: asyncpg.Pool, env_id: str) -> list[dict[str, Any]]:
    """The tracking events waiting in the outbox for ``env_id``."""
    rows = await pool.fetch(
        "SELECT exchange, body FROM events.outbox WHERE routing_key = 'events.tracking' ORDER BY id"
    )
    assert {r["exchange"] for r in rows} <= {"postwire.events"}
    return [
        e for r in rows for e in json.loads(bytes(r["body"]))["events"] if e["env_id"] == env_id
    ]


def forged(token: str) -> str:
    body, mac = token.split(".")
    return f"{body}.{('B' if mac[0] == 'A' else 'A')}{mac[1:]}"


async def test_the_pixel_is_the_same_for_every_token_and_only_a_real_one_counts(
    platform: Platform,
) -> None:
    message, unknown = await sent(platform), await sent(platform, recorded=False)
    good = platform.signer.sign(message.claim(Kind.OPEN))
    tokens = [
        good,
        forged(good),
        platform.signer.sign(unknown.claim(Kind.OPEN)),  # no such message here
        platform.signer.sign(message.claim(Kind.OPEN, tenant=unique_name("t"))),  # other tenant
        platform.signer.sign(message.claim(Kind.CLICK)),  # a click's token as a pixel
        "nonsense",
    ]
    answers = [
        await platform.client.get(f"/t/o/{t}.gif", headers={"User-Agent": CHROME}) for t in tokens
    ]
    for answer in answers:
        assert answer.status_code == 200
        assert answer.content == PIXEL
        assert answer.headers["content-type"] == "image/gif"
        assert answer.headers["cache-control"] == "no-store, no-cache, must-revalidate, private"
    (event,) = await announced(platform.pool, message.env_id)
    assert event["event_id"].startswith(f"{message.env_id}:open:")
    assert {k: event[k] for k in ("event", "msg_id", "tenant_id", "sender", "rcpt", "label")} == {
        "event": "open",
        "msg_id": f"<{message.env_id}@x>",
        "tenant_id": message.tenant,
        "sender": "news@shop.example",
        "rcpt": message.rcpt,
        "label": "promo",
    }
    assert event["ip"] == "127.0.0.1"
    assert event["user_agent"] == CHROME
    assert event["machine"] is None
    assert await announced(platform.pool, unknown.env_id) == []

    # each hit is its own fact; a HEAD is a scanner's, Apple's proxy a privacy proxy's
    await platform.client.head(f"/t/o/{good}.gif")
    await platform.client.get(f"/t/o/{good}.gif", headers={"User-Agent": "Mozilla/5.0"})
    later = await announced(platform.pool, message.env_id)
    assert [e["machine"] for e in later] == [None, "scanner", "privacy_proxy"]
    assert len({e["event_id"] for e in later}) == 3


async def test_concurrent_opens_are_committed_together(platform: Platform) -> None:
    message = await sent(platform)
    token = platform.signer.sign(message.claim(Kind.OPEN))
    before = await platform.pool.fetchval("SELECT count(*) FROM events.outbox")
    await asyncio.gather(*(platform.client.get(f"/t/o/{token}.gif") for _ in range(20)))
    assert len(await announced(platform.pool, message.env_id)) == 20
    rows = await platform.pool.fetchval("SELECT count(*) FROM events.outbox") - before
    assert rows < 20  # group commit: fewer outbox rows (one per batch) than hits


async def test_a_click_redirects_to_the_stored_link(platform: Platform) -> None:
    message = await sent(platform)
    first = platform.signer.sign(message.claim(Kind.CLICK, 0))
    answer = await platform.client.get(f"/t/c/{first}?url=https://evil.example/")
    assert answer.status_code == 302
    assert answer.headers["location"] == FIRST
    assert answer.headers["referrer-policy"] == "no-referrer"
    answer = await platform.client.get(f"/t/c/{platform.signer.sign(message.claim(Kind.CLICK, 1))}")
    assert answer.headers["location"] == SECOND
    events = await announced(platform.pool, message.env_id)
    assert [(e["event"], e["url"]) for e in events] == [
        ("click", FIRST),
        ("click", "https://例子.cn/路径"),
    ]
    assert events[0]["event_id"].startswith(f"{message.env_id}:click:")


@pytest.mark.parametrize(
    "case", ["forged", "out_of_range", "mailto", "no_content", "open", "other_link"]
)
async def test_a_click_that_leads_nowhere_is_a_404_page(platform: Platform, case: str) -> None:
    message = await sent(platform, stored=case != "no_content")
    claims: dict[str, Callable[[], str]] = {
        "forged": lambda: forged(platform.signer.sign(message.claim(Kind.CLICK))),
        "out_of_range": lambda: platform.signer.sign(message.claim(Kind.CLICK, 2)),
        "mailto": lambda: platform.signer.sign(message.claim(Kind.CLICK, 3)),
        "no_content": lambda: platform.signer.sign(message.claim(Kind.CLICK)),
        "open": lambda: platform.signer.sign(message.claim(Kind.OPEN)),
        # Signed for a link this content does not have (another content's, or edited).
        "other_link": lambda: platform.signer.sign(
            replace(message.claim(Kind.CLICK), link=link_check("https://evil.example/"))
        ),
    }
    answer = await platform.client.get(f"/t/c/{claims[case]()}")
    assert answer.status_code == 404
    assert "location" not in answer.headers
    assert answer.headers["content-type"].startswith("text/html")
    assert "Link not found" in answer.text
    assert await announced(platform.pool, message.env_id) == []


@pytest.mark.parametrize("path", ["/t/o/abc", "/t/c/", "/t/x/y/z", "/t/u"])
async def test_other_tracking_paths_are_the_404_page(platform: Platform, path: str) -> None:
    answer = await platform.client.get(path)
    assert answer.status_code == 404
    assert answer.headers["content-type"].startswith("text/html")


async def test_a_click_on_a_message_not_recorded_yet_still_redirects(platform: Platform) -> None:
    message = await sent(platform, recorded=False)
    answer = await platform.client.get(f"/t/c/{platform.signer.sign(message.claim(Kind.CLICK))}")
    assert answer.status_code == 302
    assert answer.headers["location"] == FIRST
    assert await announced(platform.pool, message.env_id) == []


async def test_the_unsubscribe_page_asks_and_changes_nothing(platform: Platform) -> None:
    message = await sent(platform)
    url = f"/t/u/{platform.signer.sign(message.claim(Kind.UNSUBSCRIBE))}"
    answer = await platform.client.get(url, headers={"Accept-Language": "zh-CN,zh;q=0.9"})
    assert answer.status_code == 200
    assert 'lang="zh"' in answer.text
    assert "确认退订" in answer.text
    assert message.rcpt in answer.text
    assert "news@shop.example" in answer.text
    assert '<form method="post">' in answer.text
    assert answer.headers["x-frame-options"] == "DENY"
    assert "form-action 'self'" in answer.headers["content-security-policy"]
    english = await platform.client.get(url, headers={"Accept-Language": "en-GB"})
    assert "Stop mail from" in english.text
    empty = await platform.client.post(url)  # neither the button nor one-click: asks again
    assert empty.status_code == 200
    assert "<form" in empty.text
    assert await announced(platform.pool, message.env_id) == []


async def test_unsubscribing_twice_is_one_event(platform: Platform) -> None:
    message = await sent(platform)
    url = f"/t/u/{platform.signer.sign(message.claim(Kind.UNSUBSCRIBE))}"
    answer = await platform.client.post(
        url, data={"confirm": "1"}, headers={"Accept-Language": "ru"}
    )
    assert answer.status_code == 200
    assert "Вы отписались" in answer.text
    again = await platform.client.post(url, data={"confirm": "1"})
    assert again.status_code == 200
    (event,) = await announced(platform.pool, message.env_id)
    assert event["event_id"] == f"{message.env_id}:unsubscribe"
    assert event["event"] == "unsubscribe"
    assert event["rcpt"] == message.rcpt


@pytest.mark.parametrize("multipart", [False, True])
async def test_rfc_8058_one_click(platform: Platform, multipart: bool) -> None:
    message = await sent(platform)
    url = f"/t/u/{platform.signer.sign(message.claim(Kind.UNSUBSCRIBE))}"
    post: Callable[[], Awaitable[httpx.Response]] = (
        (lambda: platform.client.post(url, files={"List-Unsubscribe": (None, "One-Click")}))
        if multipart
        else (lambda: platform.client.post(url, data={"List-Unsubscribe": "One-Click"}))
    )
    for _ in range(2):
        answer = await post()
        assert answer.status_code == 200
        assert answer.headers["content-type"].startswith("text/plain")
    assert [e["event"] for e in await announced(platform.pool, message.env_id)] == ["unsubscribe"]


async def test_a_forged_unsubscribe_is_a_404_and_records_nothing(platform: Platform) -> None:
    message = await sent(platform)
    token = forged(platform.signer.sign(message.claim(Kind.UNSUBSCRIBE)))
    for answer in (
        await platform.client.get(f"/t/u/{token}"),
        await platform.client.post(f"/t/u/{token}", data={"List-Unsubscribe": "One-Click"}),
        await platform.client.post(f"/t/u/{platform.signer.sign(message.claim(Kind.OPEN))}"),
    ):
        assert answer.status_code == 404
        assert answer.headers["content-type"].startswith("text/html")
    assert await announced(platform.pool, message.env_id) == []


async def test_hits_reach_the_bus_and_come_back_recorded(platform: Platform) -> None:
    """Last: the started service's relay publishes the outbox, its own subscriber records
    the events, and the unsubscribe suppresses the address."""
    message = await sent(platform)
    signer, client = platform.signer, platform.client
    await platform.service.start()
    await client.get(f"/t/o/{signer.sign(message.claim(Kind.OPEN))}.gif")
    await client.get(f"/t/c/{signer.sign(message.claim(Kind.CLICK))}")
    unsubscribe = f"/t/u/{signer.sign(message.claim(Kind.UNSUBSCRIBE))}"
    await client.post(unsubscribe, data={"List-Unsubscribe": "One-Click"})

    async def logged() -> bool | None:
        found = await platform.pool.fetch(
            "SELECT event, url FROM events.event_log WHERE env_id = $1 AND event <> ALL($2)",
            message.env_id,
            ["request", "delivered"],
        )
        return sorted(tuple(r) for r in found) == [
            ("click", FIRST),
            ("open", None),
            ("unsubscribe", None),
        ]

    async def suppressed() -> bool | None:
        reason = await platform.pool.fetchval(
            "SELECT reason FROM events.suppressions WHERE tenant_id = $1 AND address = $2",
            message.tenant,
            message.rcpt.lower(),
        )
        return bool(reason == "unsubscribe")

    done: bool = await eventually(logged, what="tracking events recorded")
    done = await eventually(suppressed, what="unsubscribe suppressed")
    done = await eventually(partial(_empty_outbox, platform.pool), what="outbox published")
    assert done
    # Recorded and gone from the outbox: another process (no memory of it) still makes no
    # second unsubscribe, and neither does this one.
    other = TrackingHits(platform.pool)
    hit = Hit(message.claim(Kind.UNSUBSCRIBE), "POST", None, None, datetime.now(UTC))
    assert await other.record(hit) is not None
    await client.post(unsubscribe, data={"List-Unsubscribe": "One-Click"})
    assert await _empty_outbox(platform.pool)


async def _empty_outbox(pool: asyncpg.Pool) -> bool | None:
    return bool(await pool.fetchval("SELECT count(*) FROM events.outbox") == 0)
