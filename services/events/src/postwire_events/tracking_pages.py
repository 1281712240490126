"""The few HTML pages a recipient may see: unsubscribe confirmation and its result, and
the page for a link we do not know. In the reader's language (``Accept-Language``:
Chinese, Russian, English otherwise), every value escaped, nothing loaded from
anywhere (inline style only), framing and referrers refused by the headers.
"""

from __future__ import annotations

import html
from dataclasses import dataclass

from fastapi.responses import HTMLResponse

LANGUAGES = ("en", "zh", "ru")

HEADERS = {
    "Content-Security-Policy": (
        "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; "
        "base-uri 'none'; frame-ancestors 'none'"
    ),
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    "X-Content-Type-Options": "nosniff",
    "Cache-Control": "no-store",
}


@dataclass(frozen=True, slots=True)
class Texts:
    confirm_title: str
    confirm_text: str  # {rcpt}, {sender}: already escaped and marked up when filled in
    button: str
    done_title: str
    done_text: str
    unknown_title: str
    unknown_text: str
    failed_title: str
    failed_text: str


TEXTS: dict[str, Texts] = {
    "en": Texts(
        confirm_title="Unsubscribe",
        confirm_text="Stop mail from {sender} to {rcpt}?",
        button="Unsubscribe",
        done_title="You are unsubscribed",
        done_text="{rcpt} will no longer receive mail from {sender}.",
        unknown_title="Link not found",
        unknown_text="This link is not valid or has expired.",
        failed_title="Please try again",
        failed_text="We could not complete this just now. Please try again in a minute.",
    ),
    "zh": Texts(
        confirm_title="退订",
        confirm_text="确定不再让 {sender} 向 {rcpt} 发送邮件吗？",
        button="确认退订",
        done_title="您已成功退订",
        done_text="{rcpt} 将不再收到来自 {sender} 的邮件。",
        unknown_title="链接无效",
        unknown_text="此链接无效或已过期。",
        failed_title="请稍后重试",
        failed_text="暂时无法完成操作，请稍后再试。",
    ),
    "ru": Texts(
        confirm_title="Отписка",
        confirm_text="Больше не получать письма от {sender} на адрес {rcpt}?",
        button="Отписаться",
        done_title="Вы отписались",
        done_text="На адрес {rcpt} больше не будут приходить письма от {sender}.",
        unknown_title="Ссылка не найдена",
        unknown_text="Ссылка недействительна или устарела.",
        failed_title="Попробуйте ещё раз",
        failed_text="Сейчас не удалось выполнить запрос. Попробуйте через минуту.",
    ),
}

_CSS = """
body{margin:0;background:#f4f5f7;color:#1f2328;font:16px/1.5 system-ui,-apple-system,
"Segoe UI","PingFang SC","Microsoft YaHei",sans-serif}
main{max-width:28rem;margin:12vh auto;padding:2rem;background:#fff;border-radius:12px;
box-shadow:0 1px 3px rgba(0,0,0,.12)}
h1{margin:0 0 1rem;font-size:1.4rem}
p{margin:0 0 1.5rem;overflow-wrap:anywhere}
p:last-child{margin:0}
b{font-weight:600}
button{font:inherit;padding:.6rem 1.4rem;border:0;border-radius:8px;background:#d1242f;
color:#fff;cursor:pointer}
button:hover{background:#a40e26}
"""


def language(accept_language: str | None) -> str:
    """The first of our languages the reader accepts, by preference (RFC 9110 q-values;
    ``zh-CN``, ``zh-Hant`` and ``zh`` all read Chinese); English otherwise."""
    ranked: list[tuple[float, int, str]] = []
    for position, item in enumerate((accept_language or "").split(",")):
        tag, _, params = item.strip().partition(";")
        primary = tag.strip().lower().split("-")[0]
        quality = 1.0
        for param in params.split(";"):
            name, _, value = param.strip().partition("=")
            if name.strip().lower() == "q":
                try:
                    quality = float(value)
                except ValueError:
                    quality = 0.0
        if quality > 0 and primary in LANGUAGES:
            ranked.append((-quality, position, primary))
    return min(ranked)[2] if ranked else "en"


def _page(lang: str, title: str, body: str, status: int) -> HTMLResponse:
    document = (
        f'<!doctype html><html lang="{lang}"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width,initial-scale=1">'
        '<meta name="robots" content="noindex">'
        f"<title>{html.escape(title)}</title><style>{_CSS}</style></head>"
        f"<body><main><h1>{html.escape(title)}</h1>{body}</main></body></html>"
    )
    return HTMLResponse(document, status_code=status, headers=HEADERS)


def _fill(text: str, rcpt: str, sender: str) -> str:
    return html.escape(text).format(
        rcpt=f"<b>{html.escape(rcpt)}</b>", sender=f"<b>{html.escape(sender)}</b>"
    )


def confirm(lang: str, rcpt: str, sender: str) -> HTMLResponse:
    """The question, with a button that POSTs to this same URL (a GET changes nothing:
    link scanners fetch every URL in a mail)."""
    t = TEXTS[lang]
    form = (
        f"<p>{_fill(t.confirm_text, rcpt, sender)}</p>"
        '<form method="post"><input type="hidden" name="confirm" value="1">'
        f'<button type="submit">{html.escape(t.button)}</button></form>'
    )
    return _page(lang, t.confirm_title, form, 200)


def done(lang: str, rcpt: str, sender: str) -> HTMLResponse:
    t = TEXTS[lang]
    return _page(lang, t.done_title, f"<p>{_fill(t.done_text, rcpt, sender)}</p>", 200)


def unknown(lang: str) -> HTMLResponse:
    t = TEXTS[lang]
    return _page(lang, t.unknown_title, f"<p>{html.escape(t.unknown_text)}</p>", 404)


def failed(lang: str) -> HTMLResponse:
    t = TEXTS[lang]
    response = _page(lang, t.failed_title, f"<p>{html.escape(t.failed_text)}</p>", 503)
    response.headers["Retry-After"] = "60"
    return response
