"""The change feed: whoever waits on a task (a long-poll, an event stream, the dispatcher waiting for
late deliveries) wakes on a change instead of polling the store.

``WatchedStore`` wraps any TaskStore and publishes the task id to a ``TaskEvents`` hub after every
write. The validator and its side-server share one ``WatchedStore`` (``watched``), so an answer the
server takes wakes the dispatcher waiting for it, and a response, a result or a status change the
loop records wakes every waiting client, at once. Changes made by other processes (a separate
ingestion instance over a shared store) are not seen by the hub; waiters therefore also re-read the
task every ``settings.proxy.watch_poll_s`` seconds, as a backstop.

A waiter subscribes before it reads (``watching``), so a change published between its read and its
wait still wakes it. A hub following many tasks for many clients (the WebSocket endpoint) ``listen``s
instead: its callback sees every published task id, once, and must not block.

Observers (``WatchedStore.observe``) are told of the changes that matter beyond a wake-up, after the
write succeeded: a task seen (created or claimed), moved along the lifecycle, given its first valid
answer, or expired. The side-server's webhook producer is one: whoever makes the change (the loop,
a miner's late delivery, a client's cancel, retention), its event comes from this one place.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Iterable, Iterator, Sequence
from datetime import date, datetime
from typing import Protocol

from subnet_proxy.store.base import Page, PurgeReport, TaskStore, Usage, UsageLimits, UsageRow
from subnet_proxy.tasks import Evaluation, FinalResult, MinerResponse, Task, TaskStatus, WebhookDelivery


class TaskEvents:
    """Per-task wake-ups: the future of ``watching(task_id)`` is done when ``publish(task_id)`` is called."""

    def __init__(self) -> None:
        self._waiters: dict[str, set[asyncio.Future[None]]] = {}
        self._listeners: list[Callable[[str], None]] = []

    def listen(self, callback: Callable[[str], None]) -> Callable[[], None]:
        """Call ``callback(task_id)`` at every publish from now on; returns the function that stops it."""
        self._listeners.append(callback)
        return lambda: self._listeners.remove(callback)

    def publish(self, task_id: str) -> None:
        for listener in self._listeners:
            listener(task_id)
        for fut in self._waiters.pop(task_id, ()):
            if not fut.done():
                fut.set_result(None)

    def wake_all(self) -> None:
        """Wake every current waiter (server shutdown: waiting requests re-check and finish)."""
        for task_id in list(self._waiters):
            self.publish(task_id)

    @contextlib.contextmanager
    def watching(self, task_id: str) -> Iterator[asyncio.Future[None]]:
        """A future done at the task's next change, subscribed from now on (read, then await it)."""
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiters.setdefault(task_id, set()).add(fut)
        try:
            yield fut
        finally:
            waiters = self._waiters.get(task_id)
            if waiters is not None:
                waiters.discard(fut)
                if not waiters:
                    del self._waiters[task_id]

    def waiting(self) -> int:
        return sum(len(w) for w in self._waiters.values())


async def until_changed(changed: asyncio.Future[None], timeout: float) -> bool:
    """Wait for a ``watching`` future at most ``timeout`` seconds; True when the task changed."""
    await asyncio.wait({changed}, timeout=timeout)
    return changed.done()


class ChangeObserver(Protocol):
    """Told of a WatchedStore's changes once they are written. It must not raise: the write it is told
    of has succeeded, and its caller must not be told otherwise."""

    def seen(self, tasks: Sequence[Task]) -> None:
        """Tasks this process created or claimed (what an observer may remember of them)."""

    async def moved(self, task: Task, result: FinalResult | None) -> None:
        """A task moved along the lifecycle (``result``: the final result stored with the move)."""

    async def answered(self, response: MinerResponse) -> None:
        """A task's first valid answer was stored."""

    async def expired(self, task_ids: Sequence[str]) -> None:
        """Tasks retention moved to EXPIRED."""


class WatchedStore(TaskStore):
    """A TaskStore that publishes every written task id to ``events`` and tells its observers of the
    changes they watch; reads pass straight through."""

    def __init__(self, inner: TaskStore, events: TaskEvents | None = None) -> None:
        self.inner = inner
        self.events = events or TaskEvents()
        self.observers: list[ChangeObserver] = []

    def observe(self, observer: ChangeObserver) -> None:
        self.observers.append(observer)

    def _changed(self, task: Task) -> Task:
        self.events.publish(task.task_id)
        return task

    # -- TaskRecords -----------------------------------------------------------------------------
    async def create_task(self, task: Task) -> tuple[Task, bool]:
        stored, created = await self.inner.create_task(task)
        self.events.publish(stored.task_id)
        for observer in self.observers:
            observer.seen([stored])
        return stored, created

    async def get_task(self, task_id: str) -> Task:
        return await self.inner.get_task(task_id)

    async def find_idempotent(self, owner: str, idempotency_key: str) -> Task | None:
        return await self.inner.find_idempotent(owner, idempotency_key)

    async def list_tasks(self, *, status: TaskStatus | None = None, owner: str | None = None,
                         kind: str | None = None, limit: int = 50, cursor: str | None = None,
                         newest_first: bool = False) -> Page:
        return await self.inner.list_tasks(status=status, owner=owner, kind=kind, limit=limit, cursor=cursor,
                                           newest_first=newest_first)

    async def transition(self, task_id: str, target: TaskStatus, *, reason: str | None = None,
                         error: tuple[str, str] | None = None, claimer: str | None = None,
                         result: FinalResult | None = None, only_if: frozenset[TaskStatus] | None = None) -> Task:
        task = self._changed(await self.inner.transition(task_id, target, reason=reason, error=error,
                                                         claimer=claimer, result=result, only_if=only_if))
        for observer in self.observers:
            await observer.moved(task, result)
        return task

    async def count_by_status(self) -> dict[TaskStatus, int]:
        return await self.inner.count_by_status()

    # -- TaskQueue -------------------------------------------------------------------------------
    async def claim_tasks(self, claimer: str, *, limit: int, lease_s: float, kinds: Iterable[str] | None = None,
                          now: datetime | None = None) -> list[Task]:
        tasks = await self.inner.claim_tasks(claimer, limit=limit, lease_s=lease_s, kinds=kinds, now=now)
        for observer in self.observers:
            observer.seen(tasks)
        return [self._changed(t) for t in tasks]

    async def renew_lease(self, task_id: str, claimer: str, *, lease_s: float) -> Task:
        return await self.inner.renew_lease(task_id, claimer, lease_s=lease_s)

    async def release_task(self, task_id: str, claimer: str, *, reason: str = "released") -> Task:
        return self._changed(await self.inner.release_task(task_id, claimer, reason=reason))

    async def assign_miners(self, task_id: str, claimer: str, miners: list[tuple[int, str]]) -> Task:
        return self._changed(await self.inner.assign_miners(task_id, claimer, miners))

    async def wait_for_task(self, timeout: float) -> bool:
        return await self.inner.wait_for_task(timeout)

    # -- AnswerStore -----------------------------------------------------------------------------
    async def record_response(self, response: MinerResponse, *,
                              only_if: frozenset[TaskStatus] | None = None) -> tuple[MinerResponse, bool]:
        stored, created = await self.inner.record_response(response, only_if=only_if)
        self.events.publish(response.task_id)
        if created and stored.is_first:
            for observer in self.observers:
                await observer.answered(stored)
        return stored, created

    async def list_responses(self, task_id: str) -> list[MinerResponse]:
        return await self.inner.list_responses(task_id)

    async def first_response(self, task_id: str) -> MinerResponse | None:
        return await self.inner.first_response(task_id)

    async def record_evaluation(self, evaluation: Evaluation) -> bool:
        recorded = await self.inner.record_evaluation(evaluation)
        self.events.publish(evaluation.task_id)
        return recorded

    async def list_evaluations(self, task_id: str) -> list[Evaluation]:
        return await self.inner.list_evaluations(task_id)

    async def set_final_result(self, result: FinalResult) -> None:
        await self.inner.set_final_result(result)
        self.events.publish(result.task_id)

    async def get_final_result(self, task_id: str) -> FinalResult | None:
        return await self.inner.get_final_result(task_id)

    # -- StoreMaintenance ------------------------------------------------------------------------
    async def purge(self, *, status: TaskStatus, older_than: datetime, limit: int = 500) -> PurgeReport:
        return await self.inner.purge(status=status, older_than=older_than, limit=limit)

    async def expire_overdue(self, *, now: datetime | None = None, limit: int = 500) -> list[str]:
        expired = await self.inner.expire_overdue(now=now, limit=limit)
        for task_id in expired:
            self.events.publish(task_id)
        if expired:
            for observer in self.observers:
                await observer.expired(expired)
        return expired

    async def blobs_in_use(self, keys: Iterable[str]) -> set[str]:
        return await self.inner.blobs_in_use(keys)

    async def ping(self) -> None:
        await self.inner.ping()

    async def close(self) -> None:
        self.events.wake_all()
        await self.inner.close()

    # -- UsageCounters (no task changes: nothing to publish) -------------------------------------
    async def count_usage(self, owner: str, kind: str, used: Usage, *, day: date,
                          limits: UsageLimits | None = None) -> tuple[bool, Usage | None]:
        return await self.inner.count_usage(owner, kind, used, day=day, limits=limits)

    async def usage(self, *, since: date, owner: str | None = None) -> list[UsageRow]:
        return await self.inner.usage(since=since, owner=owner)

    # -- WebhookOutbox ---------------------------------------------------------------------------
    async def add_webhook(self, delivery: WebhookDelivery) -> bool:
        return await self.inner.add_webhook(delivery)

    async def due_webhooks(self, *, now: datetime, limit: int, lease_s: float) -> list[WebhookDelivery]:
        return await self.inner.due_webhooks(now=now, limit=limit, lease_s=lease_s)

    async def save_webhook(self, delivery: WebhookDelivery) -> None:
        await self.inner.save_webhook(delivery)
        self.events.publish(delivery.task_id)  # the task's status shows its deliveries

    async def list_webhooks(self, task_id: str) -> list[WebhookDelivery]:
        return await self.inner.list_webhooks(task_id)


def watched(store: TaskStore) -> WatchedStore:
    """``store`` with a change feed: itself when it already has one (the validator and its side-server
    share one), else wrapped."""
    return store if isinstance(store, WatchedStore) else WatchedStore(store)
