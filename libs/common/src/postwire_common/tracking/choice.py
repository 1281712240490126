"""What a message tracks, decided once at accept time and stored with its content."""

from __future__ import annotations

import json
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Tracking:
    opens: bool = False
    clicks: bool = False
    unsubscribe: bool = False
    # Scheme, host, port and path prefix the tracking URLs start with, without a trailing
    # slash: the sender domain's tracking host when its CNAME is verified, else
    # POSTWIRE_PUBLIC_URL.
    base: str = ""

    @property
    def any(self) -> bool:
        return self.opens or self.clicks or self.unsubscribe

    def to_json(self) -> str:
        return json.dumps(
            {
                "opens": self.opens,
                "clicks": self.clicks,
                "unsubscribe": self.unsubscribe,
                "base": self.base,
            },
            separators=(",", ":"),
        )

    @classmethod
    def from_json(cls, value: str | dict[str, object] | None) -> Tracking:
        """The stored choice; nothing tracked for content stored without one (or before
        tracking existed, when only the request's flags were kept)."""
        if value is None:
            return cls()
        data = json.loads(value) if isinstance(value, str) else value
        return cls(
            opens=data.get("opens") is True,
            clicks=data.get("clicks") is True,
            unsubscribe=data.get("unsubscribe") is True,
            base=str(data.get("base") or ""),
        )
