"""A task's events as a client follows them: the one rule both the event stream (SSE) and the WebSocket use.

A ``TaskSnapshot`` is one read of a task (the task, its miner answers, its final result); its events
are ``status`` (one per timeline step), ``response`` (one per miner answer; ``first`` marks the
first valid one), ``result`` (once) and ``end`` (once the task is finished), each with the instant
it happened (``at``). A ``FeedCursor`` remembers what one follower was already sent, so a follower
can be handed any later snapshot (several snapshots may race; each event still goes out once), and
skips events before its ``since`` (a reconnecting client's catch-up). Events are built once per
snapshot, so many followers of one task share them (and their encoded form).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from subnet_proxy.server.views import final_view
from subnet_proxy.store.base import TaskStore
from subnet_proxy.tasks import FinalResult, MinerResponse, Task, TaskStatus

#: a final result exists only from DONE on (approval stores it with the move to APPROVED).
_DECIDING = frozenset({TaskStatus.DONE, TaskStatus.APPROVED})


@dataclass(slots=True)
class FeedCursor:
    """What one follower of one task was sent (or skipped as before ``since``)."""

    since: datetime | None = None
    steps: int = 0
    responses: set[str] = field(default_factory=set)
    result: bool = False
    ended: bool = False


@dataclass(slots=True)
class FeedEvent:
    name: str
    at: datetime
    data: dict[str, Any]
    #: which event of the task this is, for the cursor: a timeline index, a miner hotkey, or None.
    key: int | str | None = None
    #: the encoded message, made by the first follower that sends it and reused by the others.
    wire: str | None = None


@dataclass(slots=True)
class TaskSnapshot:
    task: Task
    responses: list[MinerResponse]
    final: FinalResult | None
    _events: list[FeedEvent] | None = None

    def _all(self) -> list[FeedEvent]:
        if self._events is None:
            task = self.task
            events = [FeedEvent("status", step.at, step.model_dump(mode="json"), i)
                      for i, step in enumerate(task.timeline)]
            events += [FeedEvent("response", r.received_at, {"uid": r.uid, "state": r.state, "latency_s": r.latency_s,
                                                             "first": r.is_first}, r.hotkey) for r in self.responses]
            if self.final is not None:
                final = self.final
                events.append(FeedEvent("result", final.decided_at, final_view(final).model_dump(mode="json")))
            events.sort(key=lambda e: e.at)  # stable: a step and an answer of the same instant keep this order
            self._events = events
        return self._events

    def events_after(self, cursor: FeedCursor, *, closing: bool = False) -> list[FeedEvent]:
        """The events ``cursor`` was not sent yet (those before its ``since`` are skipped), ending with
        ``end`` when the task is finished, or ``closing`` (the server shuts down; SSE only); advances it."""
        out: list[FeedEvent] = []
        for event in self._all():
            if event.name == "status":
                assert isinstance(event.key, int)
                if event.key < cursor.steps:
                    continue
            elif event.name == "response":
                if event.key in cursor.responses:
                    continue
                cursor.responses.add(str(event.key))
            elif cursor.result:
                continue
            else:
                cursor.result = True
            if cursor.since is None or event.at >= cursor.since:
                out.append(event)
        cursor.steps = max(cursor.steps, len(self.task.timeline))
        task, finished = self.task, self.task.status.is_terminal
        if not cursor.ended and (finished or closing):
            cursor.ended = finished
            if cursor.since is None or task.updated_at >= cursor.since or not finished:
                out.append(FeedEvent("end", task.updated_at, {"status": task.status.value, "closing": not finished}))
        return out


async def read_snapshot(store: TaskStore, task: Task, *, result: bool = True) -> TaskSnapshot:
    """The task's answers and result read after ``task`` itself; ``result=False`` skips the result
    (a follower that has it already). Only an assigned task has answers, only a deciding one a result."""
    responses = await store.list_responses(task.task_id) if task.assigned or task.status is not TaskStatus.PENDING \
        else []
    final = await store.get_final_result(task.task_id) if result and task.status in _DECIDING else None
    return TaskSnapshot(task, responses, final)
