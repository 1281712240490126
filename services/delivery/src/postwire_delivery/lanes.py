"""Lane policies: how many connections, how deep and how fast, per recipient domain.

Every domain gets ``POSTWIRE_DELIVERY_CONNECTIONS_PER_HOST`` workers and
``POSTWIRE_DELIVERY_LANE_RATE`` messages/s (0: unlimited); ``POSTWIRE_DELIVERY_LANE_OVERRIDES``
changes that for named domains (and their subdomains), e.g. ``gmail.com=4/20,qq.com=2``
(connections, then an optional rate). The SMTP pool still caps connections per MX address,
so domains that share a mail server share its cap too.
"""

from __future__ import annotations

from collections.abc import Callable

from postwire_common.config import Settings
from postwire_common.lanes import LanePolicy

# A lane has four times as many workers as connections: while some record their results
# (in one statement for many), others use the connections (the SMTP pool also caps
# connections per MX address).
WORKERS_PER_CONNECTION = 4
DEPTH_PER_CONNECTION = 16  # items a lane claims ahead, per connection


def lane_policy(settings: Settings) -> Callable[[str], LanePolicy]:
    overrides = settings.lane_overrides
    default = (settings.delivery_connections_per_host, settings.delivery_lane_rate)

    def policy(domain: str) -> LanePolicy:
        labels = domain.split(".")
        connections, rate = next(
            (
                overrides[".".join(labels[i:])]
                for i in range(len(labels))
                if ".".join(labels[i:]) in overrides
            ),
            default,
        )
        return LanePolicy(
            connections * WORKERS_PER_CONNECTION, rate, connections * DEPTH_PER_CONNECTION
        )

    return policy
