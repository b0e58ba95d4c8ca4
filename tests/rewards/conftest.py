"""Builders for reward tests: tasks and miner responses with controlled timing."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from subnet_proxy.tasks import MinerResponse, Task, TaskInput, TaskKind

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def make_task(kind: TaskKind, **task_input: Any) -> Task:
    return Task(kind=kind, owner="client-key", input=TaskInput(**task_input))


def response(task: Task, hotkey: str, *, uid: int = 0, state: str = "ok", latency: float = 1.0,
             order: int = 0, **fields: Any) -> MinerResponse:
    """A response received ``order`` milliseconds after T0 (the duplicate rule credits the earliest)."""
    return MinerResponse(task_id=task.task_id, hotkey=hotkey, uid=uid, state=state,  # type: ignore[arg-type]
                         latency_s=latency, received_at=T0 + timedelta(milliseconds=order), **fields)


def by_hotkey(rewards: list[Any]) -> dict[str, Any]:
    return {r.hotkey: r for r in rewards}
