"""Outbox rows published together: batches of one kind become one bus message."""

from __future__ import annotations

import json

from postwire_common.broker.outbox import MERGED_BYTES, merge
from postwire_common.broker.publish import Outgoing
from postwire_common.schemas import EventBatch


def events(*ids: str) -> bytes:
    return json.dumps({"events": [{"id": i} for i in ids]}, separators=(",", ":")).encode()


def test_batches_for_the_same_exchange_and_key_are_concatenated_in_order() -> None:
    items = [
        Outgoing("postwire.events", "ingest.request", events("a", "b")),
        Outgoing("postwire.events", "ingest.request", events("c")),
        Outgoing("postwire.events", "ingest.request", events("d", "e")),
    ]
    [(message, carried)] = merge(items)
    assert carried == [0, 1, 2]
    assert isinstance(message.body, bytes)
    assert [e["id"] for e in json.loads(message.body)["events"]] == ["a", "b", "c", "d", "e"]


def test_different_routes_or_kinds_are_not_mixed() -> None:
    items = [
        Outgoing("postwire.events", "ingest.request", events("a")),
        Outgoing("postwire.outbound", "outbound", b'{"batches":[{"x":1}]}'),
        Outgoing("postwire.events", "delivery.result", events("b")),
        Outgoing("postwire.events", "ingest.request", events("c")),
    ]
    merged = {tuple(carried): json.loads(m.body) for m, carried in merge(items)}  # type: ignore[arg-type]
    assert merged == {
        (0, 3): {"events": [{"id": "a"}, {"id": "c"}]},
        (1,): {"batches": [{"x": 1}]},
        (2,): {"events": [{"id": "b"}]},
    }


def test_bodies_that_are_not_one_list_field_go_out_unchanged() -> None:
    items = [
        Outgoing("x", "k", b'{"push_id":1,"attempt":2}'),
        Outgoing("x", "k", b'{"push_id":2,"attempt":1}'),
        Outgoing("x", "k", b"not json"),
    ]
    assert merge(items) == [(items[0], [0]), (items[1], [1]), (items[2], [2])]


def test_a_single_row_is_published_as_it_is() -> None:
    item = Outgoing("postwire.events", "k", events("a"), "message-id")
    assert merge([item]) == [(item, [0])]


def test_merged_messages_stay_under_the_size_bound_and_carry_every_row_once() -> None:
    big = "x" * 100_000
    items = [Outgoing("e", "k", events(f"{n}{big}")) for n in range(40)]
    merged = merge(items)
    assert len(merged) > 1
    assert sorted(n for _, carried in merged for n in carried) == list(range(40))
    for message, _ in merged:
        assert isinstance(message.body, bytes)
        assert len(message.body) <= MERGED_BYTES + 200_000
        json.loads(message.body)


def test_our_batch_models_serialise_in_the_mergeable_shape() -> None:
    body = EventBatch.model_validate({"events": [_event("1"), _event("2")]}).model_dump_json()
    second = EventBatch.model_validate({"events": [_event("3")]}).model_dump_json()
    [(message, _)] = merge([Outgoing("e", "k", body.encode()), Outgoing("e", "k", second.encode())])
    assert isinstance(message.body, bytes)
    parsed = EventBatch.model_validate_json(message.body)
    assert [e.event_id for e in parsed.events] == ["1", "2", "3"]


def _event(event_id: str) -> dict[str, object]:
    return {
        "event_id": event_id,
        "event": "request",
        "env_id": "E",
        "msg_id": "<m@x>",
        "tenant_id": "t",
        "account": "a@x",
        "sender": "a@x",
        "rcpt": "r@y",
        "recv_time": "2026-01-01T00:00:00Z",
        "time": "2026-01-01T00:00:00Z",
    }
