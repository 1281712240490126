"""Whether an open or a click was a machine's rather than the recipient's (pure).

Statistics count machine hits apart (``MailEvent.machine``), so they must be told
from people without hiding real readers:

``privacy_proxy`` (opens only)
    Apple Mail Privacy Protection fetches every remote image of a delivered mail from
    Apple's own network (17.0.0.0/8 is Apple's) with a bare ``Mozilla/5.0`` User-Agent,
    whether or not anyone reads it; Yahoo Mail prefetches images through its proxy
    (``YahooMailProxy``). Gmail's ``GoogleImageProxy`` is *not* one: it fetches when the
    user opens the mail, so it is a human open.
``scanner``
    Security gateways follow every link and load every image before the recipient sees
    the mail: their User-Agents name them (Barracuda, Mimecast, Proofpoint, Microsoft
    Safe Links, Symantec, Trend Micro, Forcepoint, Google's Safe Browsing, ...), and so
    do scripted clients (curl, python-requests, headless Chrome), which no mail reader
    is. A ``HEAD`` is a scanner checking the target (browsers and mail clients GET).
    A hit within ``SCANNER_WINDOW`` of delivery is too soon for a person: a gateway
    scanning the mail on its way in, whatever it calls itself.

Anything else is a person (None): misjudging a reader as a machine hides a real open,
so only clear signs count.
"""

from __future__ import annotations

import ipaddress
from datetime import datetime, timedelta
from enum import StrEnum

# A person cannot read a mail and act on it this soon after its server accepted it.
SCANNER_WINDOW = timedelta(seconds=10)

_APPLE = ipaddress.ip_network("17.0.0.0/8")
_APPLE_PROXY_AGENT = "mozilla/5.0"  # exactly this, nothing after it
_PROXY_AGENTS = ("yahoomailproxy",)
_SCANNER_AGENTS = (
    "barracuda",
    "mimecast",
    "proofpoint",
    "safelinks",
    "safe links",
    "microsoft office protocol discovery",
    "symantec",
    "messagelabs",
    "trendmicro",
    "trend micro",
    "forcepoint",
    "websense",
    "google-safety",
    "google-inspectiontool",
    "ironport",
    "cisco",
    "fireeye",
    "trellix",
    "sophos",
    "zscaler",
    "bitdefender",
    "checkpoint",
    "check point",
    "paloalto",
    "urlscan",
    "headlesschrome",
    "python-requests",
    "python-urllib",
    "aiohttp",
    "go-http-client",
    "curl/",
    "wget/",
    "libwww-perl",
    "java/",
)


class Machine(StrEnum):
    PRIVACY_PROXY = "privacy_proxy"
    SCANNER = "scanner"


def _address(ip: str | None) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    if not ip:
        return None
    try:
        address = ipaddress.ip_address(ip)
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


def _privacy_proxy(ip: str | None, agent: str) -> bool:
    address = _address(ip)
    if address is not None and address in _APPLE:
        return True
    if agent.strip() == _APPLE_PROXY_AGENT:
        return True
    return any(name in agent for name in _PROXY_AGENTS)


def classify(
    *,
    is_open: bool,
    method: str,
    ip: str | None,
    user_agent: str | None,
    at: datetime,
    delivered_at: datetime | None,
    window: timedelta = SCANNER_WINDOW,
) -> Machine | None:
    """What made this hit, when a machine did; None for a person. ``delivered_at`` is
    when the message was delivered (None while it is not, or not known); ``window`` is
    POSTWIRE_TRACKING_SCANNER_WINDOW."""
    agent = (user_agent or "").lower()
    if is_open and _privacy_proxy(ip, agent):
        return Machine.PRIVACY_PROXY
    if method.upper() == "HEAD":
        return Machine.SCANNER
    if any(name in agent for name in _SCANNER_AGENTS):
        return Machine.SCANNER
    if delivered_at is not None and timedelta(0) <= at - delivered_at < window:
        return Machine.SCANNER
    return None
