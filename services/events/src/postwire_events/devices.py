"""The device of an open or click, from its user agent (SendCloud's 设备 column).

A coarse name a person recognises, read from the platform tokens browsers and mail
clients put in User-Agent; the most specific first (an iPad says "Mac OS X" too, Android
says "Linux"). None when nothing is recognised, and for machine hits' agents that name
no platform.
"""

from __future__ import annotations

_PLATFORMS = (
    ("iphone", "iPhone"),
    ("ipad", "iPad"),
    ("android", "Android"),
    ("windows phone", "Windows Phone"),
    ("windows", "Windows"),
    ("cros", "ChromeOS"),
    ("macintosh", "Mac"),
    ("mac os x", "Mac"),
    ("linux", "Linux"),
)


def device(user_agent: str | None) -> str | None:
    agent = (user_agent or "").lower()
    return next((name for token, name in _PLATFORMS if token in agent), None)
