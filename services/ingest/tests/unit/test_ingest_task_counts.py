"""ingest's subscriber of tasks' counts on an in-memory broker: each task's newest figures
go to the task store, once per task per message (the relay may merge several flushes)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any, cast

from faststream.rabbit import TestRabbitBroker

from postwire_common.broker import topology
from postwire_common.broker.factory import make_broker
from postwire_common.config import Settings
from postwire_common.schemas import TaskCount, TaskCounts
from postwire_ingest import handlers

T0 = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)


class Tasks:
    """Stands in for TaskStore: records what it is told."""

    def __init__(self) -> None:
        self.recorded: list[tuple[str, str, int, int]] = []

    async def record_counts(
        self, account_id: str, task_id: str, *, delivered: int, failed: int, time: datetime
    ) -> None:
        del time
        self.recorded.append((account_id, task_id, delivered, failed))


def count(task: str, delivered: int, failed: int, seconds: int) -> TaskCount:
    return TaskCount(
        tenant_id="acct",
        task_id=task,
        delivered=delivered,
        failed=failed,
        time=T0 + timedelta(seconds=seconds),
    )


async def test_each_tasks_newest_counts_are_recorded() -> None:
    tasks = Tasks()
    broker = make_broker(Settings(), service="ingest-test")
    handlers.register(broker, cast(Any, None), cast(Any, tasks))
    merged = TaskCounts(
        counts=[count("a", 3, 0, 1), count("b", 1, 0, 1), count("a", 2, 1, 2), count("b", 0, 0, 0)]
    )
    async with TestRabbitBroker(broker) as test:
        await test.publish(merged, exchange=topology.TASKS, routing_key=topology.TASK_COUNTS_KEY)
    assert sorted(tasks.recorded) == [("acct", "a", 2, 1), ("acct", "b", 1, 0)]
