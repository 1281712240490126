"""Topics, queues, subscriptions and event rules: their names, settings and endpoints.

The model is MNS's, as the Aliyun seed (``001_…``) uses it for mail results:

- a **topic** fans every message out to each of its **subscriptions**;
- a subscription's endpoint is an ``http(s)://`` URL or ``queue:<name>``, with a retry
  strategy (``BACKOFF_RETRY`` or ``EXPONENTIAL_DECAY_RETRY``, MNS's schedules) and a
  content format (``SIMPLIFIED``, ``JSON`` or ``XML``);
- an **event rule** sends an account's events of some types either to exactly one topic
  (``topic:<name>``, never an ``sms.`` one) or to HTTP and queue endpoints, for which it
  makes its own topic ``rule.<rule name>`` with one subscription per endpoint. The two
  kinds never mix.

Everything here is pure: checks that need the database (does the queue exist?) happen
in :mod:`postwire_notifier.rules`.
"""

from __future__ import annotations

import random
import re
from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum

from postwire_common.errors import EmptyValue, InvalidValue
from postwire_common.schemas import MNS_EVENT_TYPES
from postwire_notifier.http_client import check_url

_NAME = re.compile(r"[A-Za-z0-9._-]+")

TOPIC_NAME_MAX = 256
QUEUE_NAME_MAX = 120  # MNS's queue name limit
SUBSCRIPTION_NAME_MAX = 256
RULE_NAME_MAX = 64
RESERVED_TOPIC_PREFIX = "sms."  # SMS-only topics (the seed): never a rule's endpoint
RULE_TOPIC_PREFIX = "rule."  # topics a rule makes for its HTTP and queue endpoints

MAX_TOPICS = 100
MAX_QUEUES = 100
MAX_SUBSCRIPTIONS = 100  # per topic
MAX_RULES = 50
MAX_RULE_ENDPOINTS = 10

# MNS's queue attributes: ranges and defaults (seconds, bytes).
VISIBILITY_TIMEOUT = (1, 43200, 30)
MESSAGE_RETENTION = (60, 1296000, 345600)
MAX_MESSAGE_SIZE = (1024, 65536, 65536)

EVENT_TYPES = tuple(dict.fromkeys(MNS_EVENT_TYPES.values()))  # in API.md's order


class Strategy(StrEnum):
    BACKOFF_RETRY = "BACKOFF_RETRY"
    EXPONENTIAL_DECAY_RETRY = "EXPONENTIAL_DECAY_RETRY"


class ContentFormat(StrEnum):
    SIMPLIFIED = "SIMPLIFIED"
    JSON = "JSON"
    XML = "XML"


def retry_waits(strategy: Strategy, rng: random.Random | None = None) -> list[float]:
    """The waits between attempts, as MNS documents them.

    ``BACKOFF_RETRY``: 3 retries, each after a random 10-20 s. ``EXPONENTIAL_DECAY_RETRY``:
    176 retries within a day, after 1, 2, 4, … 512 s, then every 512 s.
    """
    if strategy is Strategy.BACKOFF_RETRY:
        rng = rng or random.Random()
        return [rng.uniform(10.0, 20.0) for _ in range(3)]
    waits = [float(2**n) for n in range(10)]
    return waits + [512.0] * (176 - len(waits))


def check_name(kind: str, name: str, longest: int) -> str:
    if not isinstance(name, str) or not name:
        raise EmptyValue(f"a {kind} needs a name")
    if len(name) > longest or not _NAME.fullmatch(name):
        raise InvalidValue(
            f"{kind} name {name!r}: 1-{longest} characters of letters, digits, '-', '_' and '.'"
        )
    return name


def check_range(field: str, value: int | None, bounds: tuple[int, int, int]) -> int:
    low, high, default = bounds
    if value is None:
        return default
    if not low <= value <= high:
        raise InvalidValue(f"{field} must be between {low} and {high}")
    return value


def check_event_types(types: Sequence[str]) -> list[str]:
    if not types:
        raise EmptyValue("event_types needs at least one event type")
    unknown = [t for t in types if t not in EVENT_TYPES]
    if unknown:
        raise InvalidValue(f"unknown event type {unknown[0]!r}; use {', '.join(EVENT_TYPES)}")
    return list(dict.fromkeys(types))


class EndpointKind(StrEnum):
    TOPIC = "topic"
    QUEUE = "queue"
    HTTP = "http"


@dataclass(frozen=True, slots=True)
class Endpoint:
    kind: EndpointKind
    target: str  # the topic or queue name, or the URL

    def __str__(self) -> str:
        return self.target if self.kind is EndpointKind.HTTP else f"{self.kind}:{self.target}"


def parse_endpoint(value: str, *, topics_allowed: bool) -> Endpoint:
    """``topic:<name>`` (rules only), ``queue:<name>``, or an ``http(s)://`` URL."""
    if not isinstance(value, str) or not value:
        raise EmptyValue("an endpoint is empty")
    prefix, sep, rest = value.partition(":")
    if sep and prefix == "queue":
        return Endpoint(EndpointKind.QUEUE, check_name("queue", rest, QUEUE_NAME_MAX))
    if sep and prefix == "topic" and topics_allowed:
        return Endpoint(EndpointKind.TOPIC, check_name("topic", rest, TOPIC_NAME_MAX))
    if prefix in ("http", "https"):
        return Endpoint(EndpointKind.HTTP, check_url(value))
    kinds = "topic:<name>, queue:<name>" if topics_allowed else "queue:<name>"
    raise InvalidValue(f"endpoint {value!r}: use {kinds} or an http(s):// URL")


def check_rule_endpoints(values: Sequence[str]) -> list[Endpoint]:
    """The seed's rules: one topic alone, or any HTTP and queue endpoints, never both."""
    if not values:
        raise EmptyValue("endpoints needs at least one endpoint")
    if len(values) > MAX_RULE_ENDPOINTS:
        raise InvalidValue(f"a rule has at most {MAX_RULE_ENDPOINTS} endpoints")
    endpoints = list(dict.fromkeys(parse_endpoint(v, topics_allowed=True) for v in values))
    topics = [e for e in endpoints if e.kind is EndpointKind.TOPIC]
    if topics and len(topics) < len(endpoints):
        raise InvalidValue(
            "endpoints: a topic cannot be combined with HTTP or queue endpoints; use one "
            "topic, or HTTP and queue endpoints (the rule then makes its own topic)"
        )
    if len(topics) > 1:
        raise InvalidValue("endpoints: a rule publishes to at most one topic")
    for topic in topics:
        if topic.target.startswith(RESERVED_TOPIC_PREFIX):
            raise InvalidValue(
                f"endpoints: {topic.target} is an SMS-only topic ('sms.' names) and cannot "
                "receive mail events"
            )
    return endpoints


def rule_topic(rule: str) -> str:
    return f"{RULE_TOPIC_PREFIX}{rule}"
