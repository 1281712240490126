"""What a consumer does when its handler fails.

- The body does not parse (a pydantic ``ValidationError``): the message is poison; it is
  rejected without requeue and dead-lettered to ``<queue>.dead`` at once.
- The infrastructure failed (PostgreSQL or RabbitMQ unreachable, a timeout; see
  ``postwire_common.infra``): the handler is run again in place, with exponential
  backoff up to a minute, for as long as it takes. The message stays unacknowledged and
  is not requeued, so an outage does not count against its delivery limit. (Only
  RabbitMQ's ``consumer_timeout``, 30 minutes by default, takes it back: once per 30
  minutes of outage, against a limit of 50.)
- Anything else (a bug): the handler waits with the same backoff, then the message is
  requeued. Quorum queues count deliveries, so a message that keeps failing is
  dead-lettered after ``DELIVERY_LIMIT`` tries instead of cycling forever, and nothing
  is dropped.

Handlers therefore only need to raise; they never ack by hand.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from faststream import BaseMiddleware
from faststream.exceptions import HandlerException, NackMessage, RejectMessage
from faststream.message import StreamMessage
from pydantic import ValidationError

from postwire_common.infra import is_infrastructure
from postwire_common.observability.metrics import INFRASTRUCTURE_RETRIES

log = logging.getLogger("postwire.broker")

MAX_BACKOFF = 60.0


def delivery_count(msg: StreamMessage[Any]) -> int:
    """How many times this message was delivered before (quorum queues count it)."""
    headers = msg.headers or {}
    try:
        return int(headers.get("x-delivery-count", 0))
    except (TypeError, ValueError):
        return 0


def backoff_seconds(count: int) -> float:
    return min(MAX_BACKOFF, 0.25 * 2.0 ** min(count, 16))


class BackoffMiddleware(BaseMiddleware[Any, Any]):
    async def consume_scope(self, call_next: Any, msg: StreamMessage[Any]) -> Any:
        tries = 0
        while True:
            try:
                return await call_next(msg)
            except HandlerException:
                raise
            except ValidationError as exc:
                log.error(
                    "unparseable message rejected (to its dead-letter queue, or dropped there)",
                    extra={
                        "message_id": msg.message_id,
                        "error": str(exc)[:500],
                        "body": bytes(msg.body[:500]).decode("utf-8", "replace"),
                    },
                )
                raise RejectMessage(requeue=False) from exc
            except Exception as exc:
                if is_infrastructure(exc):
                    wait = backoff_seconds(tries)
                    tries += 1
                    INFRASTRUCTURE_RETRIES.inc()
                    log.warning(
                        "infrastructure unavailable; handling again in place (not counted)",
                        extra={
                            "message_id": msg.message_id,
                            "retry_in_s": wait,
                            "error": repr(exc),
                        },
                    )
                    await asyncio.sleep(wait)
                    continue
                count = delivery_count(msg)
                wait = backoff_seconds(count)
                log.warning(
                    "handler failed; requeueing after backoff",
                    exc_info=exc,
                    extra={"message_id": msg.message_id, "deliveries": count, "backoff_s": wait},
                )
                await asyncio.sleep(wait)
                raise NackMessage(requeue=True) from exc
