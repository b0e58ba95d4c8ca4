"""The change feed, metered: every task write this process makes feeds ``TaskMetrics``.

``MeteredStore`` is the ``WatchedStore`` the validator and its side-server share, so one place
sees every lifecycle step whoever takes it (a client's submit, the loop's claim and answers, a
miner's late delivery, an approval through a peer's evaluation, retention's expiry) without the
dispatcher, evaluator or routes knowing about metrics. The kind and submission time of the tasks
this process touches are remembered (bounded) so an answer or an expiry, which carries only the
task id, is counted under its kind; one this process never saw is read once.
"""

from __future__ import annotations

import logging
from collections import OrderedDict
from collections.abc import Iterable
from datetime import datetime

from subnet_proxy.monitoring.task_metrics import TaskMetrics
from subnet_proxy.store.base import TaskStore
from subnet_proxy.store.watched import TaskEvents, WatchedStore
from subnet_proxy.tasks import FinalResult, MinerResponse, Task, TaskStatus, utcnow

log = logging.getLogger(__name__)

#: tasks whose kind and submission time are remembered (the oldest forgotten first).
REMEMBERED = 50_000


class MeteredStore(WatchedStore):
    """A ``WatchedStore`` that also counts what it writes into ``metrics`` (see the module docstring)."""

    def __init__(self, inner: TaskStore, metrics: TaskMetrics, events: TaskEvents | None = None) -> None:
        super().__init__(inner, events)
        self.metrics = metrics
        self._known: OrderedDict[str, tuple[str, datetime]] = OrderedDict()

    def _remember(self, task: Task) -> None:
        self._known[task.task_id] = (str(task.kind), task.created_at)
        if len(self._known) > REMEMBERED:
            self._known.popitem(last=False)

    async def _kind_of(self, task_id: str) -> tuple[str, datetime] | None:
        known = self._known.get(task_id)
        if known is None:
            try:
                task = await self.inner.get_task(task_id)
            except Exception:  # noqa: BLE001 - metrics never fail a write that succeeded; logged
                log.debug("task %s: kind unknown, not counted", task_id, exc_info=True)
                return None
            self._remember(task)
            known = self._known[task_id]
        return known

    async def create_task(self, task: Task) -> tuple[Task, bool]:
        stored, created = await super().create_task(task)
        if created:
            self._remember(stored)
            self.metrics.task_submitted(str(stored.kind), stored.task_id)
        return stored, created

    async def claim_tasks(self, claimer: str, *, limit: int, lease_s: float, kinds: Iterable[str] | None = None,
                          now: datetime | None = None) -> list[Task]:
        tasks = await super().claim_tasks(claimer, limit=limit, lease_s=lease_s, kinds=kinds, now=now)
        at = utcnow()
        for task in tasks:
            self._remember(task)
            queued = next((t.at for t in reversed(task.timeline) if t.status is TaskStatus.PENDING), task.created_at)
            self.metrics.task_dispatched(str(task.kind), (at - queued).total_seconds())
        return tasks

    async def transition(self, task_id: str, target: TaskStatus, *, reason: str | None = None,
                         error: tuple[str, str] | None = None, claimer: str | None = None,
                         result: FinalResult | None = None, only_if: frozenset[TaskStatus] | None = None) -> Task:
        task = await super().transition(task_id, target, reason=reason, error=error, claimer=claimer, result=result,
                                        only_if=only_if)
        kind = str(task.kind)
        if target is TaskStatus.APPROVED:
            self.metrics.task_approved(kind, task_id, (task.updated_at - task.created_at).total_seconds())
        elif target is TaskStatus.FAILED:
            code, message = (task.error.code, task.error.message) if task.error else ("unknown", reason or "")
            self.metrics.task_failed(kind, task_id, code, message)
        elif target is TaskStatus.EXPIRED:
            self.metrics.task_expired(kind, task_id)
        if target in (TaskStatus.APPROVED, TaskStatus.FAILED, TaskStatus.EXPIRED):
            self._known.pop(task_id, None)
        return task

    async def record_response(self, response: MinerResponse, *,
                              only_if: frozenset[TaskStatus] | None = None) -> tuple[MinerResponse, bool]:
        stored, created = await super().record_response(response, only_if=only_if)
        if created and (known := await self._kind_of(stored.task_id)) is not None:
            kind, submitted = known
            first = (stored.received_at - submitted).total_seconds() if stored.is_first else None
            self.metrics.answer(kind, stored.task_id, stored.state, first)
        return stored, created

    async def expire_overdue(self, *, now: datetime | None = None, limit: int = 500) -> list[str]:
        expired = await super().expire_overdue(now=now, limit=limit)
        for task_id in expired:
            if (known := await self._kind_of(task_id)) is not None:
                self.metrics.task_expired(known[0], task_id)
            self._known.pop(task_id, None)
        return expired
