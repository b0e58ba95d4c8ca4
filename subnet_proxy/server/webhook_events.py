"""Webhook events: made where task changes are already seen (the store's change feed), kept in the outbox.

``WebhookProducer`` observes the ``WatchedStore`` the validator loop and the side-server share
(``WatchedStore.observe``), so every change reaches it whoever makes it: the loop's first answer, a
miner's late delivery, DONE, an approval (here or through a peer's evaluation), a client's cancel,
retention's expiry. For a task with a ``callback_url`` it writes one event per occasion to the
store's outbox (``WebhookOutbox.add_webhook``: once per event id, so a repeat writes nothing) and
wakes the worker; a task without one costs a dictionary look-up. Events::

    task.first_answer   the first valid answer was stored       data: answer
    task.done           every chosen miner answered or timed out data: (urls)
    task.approved       evaluated: the final result              data: result
    task.failed         no valid answer, or cancelled            data: error (code "cancelled" for a cancel)
    task.expired        its deadline passed                      data: error

What is lost: an event whose change was written but whose outbox row was not (the process died in
between, or the store refused the second write; logged). The outbox row is written right after the
change, before the caller goes on.
"""

from __future__ import annotations

import logging
from collections import OrderedDict
from collections.abc import Callable, Sequence
from typing import Any

from subnet_proxy.api.schemas import WebhookEvent, WebhookEventType, result_url, status_url
from subnet_proxy.server.views import answer_view, final_view
from subnet_proxy.store.base import TaskStore
from subnet_proxy.tasks import FinalResult, MinerResponse, Task, TaskStatus, WebhookDelivery, utcnow

log = logging.getLogger(__name__)

#: tasks whose callback URL (or its absence) is remembered, the oldest forgotten first.
REMEMBERED = 50_000
#: the statuses that send an event when a task reaches them, and the event's type.
EVENT_TYPES: dict[TaskStatus, WebhookEventType] = {
    TaskStatus.DONE: "task.done", TaskStatus.APPROVED: "task.approved", TaskStatus.FAILED: "task.failed",
    TaskStatus.EXPIRED: "task.expired",
}


class WebhookProducer:
    """A ``ChangeObserver`` that turns the changes of tasks with a callback URL into outbox rows."""

    def __init__(self, store: TaskStore, *, wake: Callable[[], None]) -> None:
        self.store = store
        self.wake = wake
        self._callbacks: OrderedDict[str, str | None] = OrderedDict()

    def seen(self, tasks: Sequence[Task]) -> None:
        for task in tasks:
            self._remember(task.task_id, task.callback_url)

    def _remember(self, task_id: str, url: str | None) -> None:
        self._callbacks[task_id] = url
        if len(self._callbacks) > REMEMBERED:
            self._callbacks.popitem(last=False)

    async def _task_if_called_back(self, task_id: str) -> Task | None:
        """The task when it has a callback URL; read only when this process never saw it, or saw it
        with one (the event needs its owner and current state)."""
        if task_id in self._callbacks and self._callbacks[task_id] is None:
            return None
        task = await self.store.get_task(task_id)
        self._remember(task_id, task.callback_url)
        return task if task.callback_url else None

    async def moved(self, task: Task, result: FinalResult | None) -> None:
        event_type = EVENT_TYPES.get(task.status)
        if event_type is not None and task.callback_url:
            if task.status is TaskStatus.APPROVED and result is None:
                result = await self.store.get_final_result(task.task_id)
            data = {"error": task.error.model_dump(mode="json") if task.error else None,
                    "result": final_view(result).model_dump(mode="json") if result else None}
            await self._emit(task, task.callback_url, event_type, data)
        if task.status.is_terminal:
            self._callbacks.pop(task.task_id, None)

    async def answered(self, response: MinerResponse) -> None:
        try:
            task = await self._task_if_called_back(response.task_id)
        except Exception:  # noqa: BLE001 - the answer is stored; its webhook is lost, said in the log
            log.warning("task %s: could not read it for its first-answer webhook", response.task_id, exc_info=True)
            return
        if task is not None and task.callback_url:
            data = {"answer": answer_view(response).model_dump(mode="json")}
            await self._emit(task, task.callback_url, "task.first_answer", data, status=TaskStatus.DISTRIBUTED,
                             at=int(response.received_at.timestamp()))

    async def expired(self, task_ids: Sequence[str]) -> None:
        for task_id in task_ids:
            try:
                task = await self._task_if_called_back(task_id)
            except Exception:  # noqa: BLE001 - the expiry is stored; its webhook is lost, said in the log
                log.warning("task %s: could not read it for its expiry webhook", task_id, exc_info=True)
                continue
            if task is not None:
                await self.moved(task, None)

    async def _emit(self, task: Task, url: str, event_type: WebhookEventType, data: dict[str, Any], *,
                    status: TaskStatus | None = None, at: int | None = None) -> None:
        event_id = f"evt_{task.task_id}_{event_type.removeprefix('task.')}"
        event = WebhookEvent(id=event_id, type=event_type, task_id=task.task_id, status=status or task.status,
                             created=at if at is not None else int(task.updated_at.timestamp()),
                             data={**data, "status_url": status_url(task.task_id),
                                   "result_url": result_url(task.task_id)})
        now = utcnow()
        delivery = WebhookDelivery(event_id=event_id, task_id=task.task_id, owner=task.owner, url=url,
                                   event_type=event_type, body=event.model_dump_json(), created_at=now,
                                   next_attempt_at=now)
        try:
            added = await self.store.add_webhook(delivery)
        except Exception:  # noqa: BLE001 - the change is stored; its webhook is lost, said in the log
            log.warning("task %s: %s webhook not stored", task.task_id, event_type, exc_info=True)
            return
        if added:
            self.wake()
