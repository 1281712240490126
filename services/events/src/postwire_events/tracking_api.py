"""The tracking URLs in delivered mail: open pixel, click redirect, unsubscribe.

```text
GET|HEAD /t/o/<token>.gif   the same 43-byte GIF for every token, valid or not; a valid
                            token of a known message announces an ``open``
GET      /t/c/<token>       302 to link n of the stored content (never a URL from the
                            request), then a ``click``; 404 page for anything else
GET      /t/u/<token>       confirmation page with a button; changes nothing (link
                            scanners fetch every URL of a mail)
POST     /t/u/<token>       the button (``confirm=1``) or RFC 8058's one-click
                            (``List-Unsubscribe=One-Click``): one ``unsubscribe``
```

Browser-facing, not API: no credentials (the token is the credential: it is signed,
so nobody can make one up), no envelope, left out of the OpenAPI document. Tracking never
fails the reader (Postal's rule): the pixel always answers and a click still redirects
when its event could not be written; only an unsubscribe that could not be committed
says so (503), since the reader must know to try again. The client address is the
connection's peer: the HTTP server is run without proxy headers, and no setting names
proxies to believe, so behind a gateway it is the gateway's address.
"""

from __future__ import annotations

import base64
import logging
from collections import OrderedDict
from datetime import UTC, datetime
from urllib.parse import quote, urlsplit, urlunsplit

from fastapi import APIRouter, Request, Response

from postwire_common.content import ContentMissing, ContentStore
from postwire_common.http.client_address import client_address
from postwire_common.text import has_control
from postwire_common.tracking.copies import clicked_url, tracked_urls
from postwire_common.tracking.tokens import Claim, Kind, TokenSigner
from postwire_events import tracking_pages as pages
from postwire_events.tracking_hits import Hit, TrackingHits

log = logging.getLogger("postwire.tracking")

# GIF89a, 1x1, one colour made transparent by its graphic control extension.
PIXEL = base64.b64decode("R0lGODlhAQABAIAAAP///wAAACH5BAEAAAAALAAAAAABAAEAAAICRAEAOw==")
PIXEL_HEADERS = {
    "Cache-Control": "no-store, no-cache, must-revalidate, private",
    "Pragma": "no-cache",
    "Expires": "0",
}
ONE_CLICK = "One-Click"
_NO_REFERRER = {"Referrer-Policy": "no-referrer"}
_LOCATION_SAFE = "!#$%&'()*+,-./:;=?@[]~_"


def location(url: str) -> str | None:
    """``url`` as a Location header value: http(s) only, no control characters, non-ASCII
    percent-encoded (and an international host name in IDNA); None if it cannot be one."""
    if has_control(url) or any(c in url for c in "\r\n\t \x7f"):
        return None
    try:
        parts = urlsplit(url)
        host = parts.hostname
        if parts.scheme.lower() not in ("http", "https") or not host:
            return None
        netloc = parts.netloc
        if not netloc.isascii():
            port = f":{parts.port}" if parts.port else ""
            userinfo = netloc.rpartition("@")[0]
            netloc = (f"{quote(userinfo, safe=':%')}@" if userinfo else "") + (
                host.encode("idna").decode("ascii") + port
            )
    except (ValueError, UnicodeError):
        return None
    encoded = urlunsplit(
        (parts.scheme, netloc, *(quote(p, safe=_LOCATION_SAFE) for p in parts[2:]))
    )
    return encoded if encoded.isascii() and not has_control(encoded) else None


class Links:
    """Each content's tracked URLs (parsing the MIME once), the last ``size`` used."""

    def __init__(self, contents: ContentStore, *, size: int = 4096) -> None:
        self._contents = contents
        self._size = size
        self._urls: OrderedDict[str, list[str]] = OrderedDict()

    async def get(self, content_id: str) -> list[str]:
        urls = self._urls.get(content_id)
        if urls is None:
            urls = tracked_urls(await self._contents.get(content_id))
            self._urls[content_id] = urls
            if len(self._urls) > self._size:
                self._urls.popitem(last=False)
        else:
            self._urls.move_to_end(content_id)
        return urls


def _hit(request: Request, claim: Claim, url: str | None = None) -> Hit:
    peer = request.client.host if request.client else None
    return Hit(
        claim=claim,
        method=request.method,
        ip=client_address(
            peer, request.headers.get("x-forwarded-for"), request.app.state.trusted_proxies
        ),
        user_agent=request.headers.get("user-agent"),
        time=datetime.now(UTC),
        url=url,
    )


def _language(request: Request) -> str:
    return pages.language(request.headers.get("accept-language"))


def router(signer: TokenSigner, hits: TrackingHits, links: Links) -> APIRouter:
    r = APIRouter(include_in_schema=False)

    async def confirmation(claim: Claim, lang: str) -> Response:
        try:
            message = await hits.message(claim)
        except Exception as exc:
            log.warning("unsubscribe page's message not read", exc_info=exc)
            return pages.failed(lang)
        if message is None:
            return pages.unknown(lang)
        return pages.confirm(lang, message.rcpt, message.sender)

    @r.api_route("/t/o/{token}.gif", methods=["GET", "HEAD"])
    async def pixel(token: str, request: Request) -> Response:
        claim = signer.verify(Kind.OPEN, token)
        if claim is not None:
            try:
                await hits.record(_hit(request, claim))
            except Exception as exc:  # the pixel answers whatever happens behind it
                log.warning("open not recorded", exc_info=exc)
        return Response(PIXEL, media_type="image/gif", headers=PIXEL_HEADERS)

    @r.get("/t/c/{token}")
    async def click(token: str, request: Request) -> Response:
        claim = signer.verify(Kind.CLICK, token)
        if claim is None:
            return pages.unknown(_language(request))
        try:
            urls = await links.get(claim.content_id)
        except ContentMissing:
            return pages.unknown(_language(request))
        except Exception as exc:
            log.warning("click's content not read", exc_info=exc)
            return pages.failed(_language(request))
        url = clicked_url(urls, claim)
        target = location(url) if url is not None else None
        if url is None or target is None:
            return pages.unknown(_language(request))
        try:
            await hits.record(_hit(request, claim, url))
        except Exception as exc:  # the reader still goes where the link leads
            log.warning("click not recorded", exc_info=exc)
        return Response(
            status_code=302,
            headers={"Location": target, "Cache-Control": "no-store", **_NO_REFERRER},
        )

    @r.get("/t/u/{token}")
    async def unsubscribe_page(token: str, request: Request) -> Response:
        lang = _language(request)
        claim = signer.verify(Kind.UNSUBSCRIBE, token)
        if claim is None:
            return pages.unknown(lang)
        return await confirmation(claim, lang)

    @r.post("/t/u/{token}")
    async def unsubscribe(token: str, request: Request) -> Response:
        lang = _language(request)
        claim = signer.verify(Kind.UNSUBSCRIBE, token)
        if claim is None:
            return pages.unknown(lang)
        try:
            form = await request.form(max_files=0, max_fields=8)
        except Exception:  # not a form, or a malformed one
            form = None
        one_click = form is not None and form.get("List-Unsubscribe") == ONE_CLICK
        if form is None or not (one_click or form.get("confirm")):
            return await confirmation(claim, lang)  # neither the button nor one-click
        try:
            message = await hits.record(_hit(request, claim))
        except Exception as exc:
            log.warning("unsubscribe not recorded", exc_info=exc)
            return pages.failed(lang)
        if message is None:
            return pages.unknown(lang)
        if one_click:
            return Response("unsubscribed\n", media_type="text/plain", headers=_NO_REFERRER)
        return pages.done(lang, message.rcpt, message.sender)

    @r.get("/t/{rest:path}")
    async def elsewhere(rest: str, request: Request) -> Response:
        """Any other /t/ URL (a link cut short by a mail client): the page, not the API's
        JSON envelope. Declared last, so it never hides the routes above."""
        return pages.unknown(_language(request))

    return r
