"""Small builders for the conformance tests: tasks and responses with only what a test cares about."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from subnet_proxy.tasks import MinerResponse, Task, TaskInput, TaskKind

#: a fixed past instant, so ordering and lease tests do not depend on the clock
T0 = datetime(2026, 1, 1, tzinfo=UTC)


def make_task(n: int = 0, *, owner: str = "client-a", kind: TaskKind = TaskKind.SUMMARIZATION, **fields: Any) -> Task:
    """Task number ``n``, created ``n`` seconds after T0 (so tasks order by ``n``)."""
    fields.setdefault("created_at", T0 + timedelta(seconds=n))
    fields.setdefault("updated_at", fields["created_at"])
    fields.setdefault("input", TaskInput(text=f"text number {n}"))
    return Task(kind=kind, owner=owner, **fields)


def make_response(task_id: str, hotkey: str, *, uid: int = 0, state: str = "ok", **fields: Any) -> MinerResponse:
    fields.setdefault("text", f"answer of {hotkey}")
    return MinerResponse(task_id=task_id, hotkey=hotkey, uid=uid, state=state, **fields)
