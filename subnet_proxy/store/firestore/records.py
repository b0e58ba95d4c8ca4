"""The Firestore store's ``TaskRecords``: create, read, list, move and count tasks.

A create is one batch (the task, its idempotency record, its blob references): a repeat id or
(owner, key) makes the whole batch fail with a conflict, and the first task is returned instead.
A move is a transaction (``FirestoreCore._update_if``).
"""

from __future__ import annotations

import asyncio

from google.api_core import exceptions as gexc

from subnet_proxy.store import ops
from subnet_proxy.store.base import Page, TaskNotFound, TaskRecords
from subnet_proxy.store.firestore import codec, queries
from subnet_proxy.store.firestore.core import FirestoreCore
from subnet_proxy.tasks import FinalResult, Task, TaskStatus, utcnow


class FirestoreRecords(FirestoreCore, TaskRecords):
    """The ``tasks`` and ``idempotency`` collections."""

    async def create_task(self, task: Task) -> tuple[Task, bool]:
        ops.check_new(task)
        batch = self._client.batch()
        idem_ref = None
        if task.idempotency_key is not None:
            idem_ref = self._col.idempotency.document(codec.doc_id(task.owner, task.idempotency_key))
            batch.create(idem_ref, {"owner": task.owner, "idempotency_key": task.idempotency_key,
                                    "task_id": task.task_id, "created_at": task.created_at})
        batch.create(self._col.tasks.document(task.task_id), codec.encode_task(task))
        self._add_refs(batch, task.blob_keys, task.task_id, "input")
        try:
            await batch.commit()
        except gexc.Conflict:
            # the same task id, or the same owner + idempotency key: the first one stands
            first_id = task.task_id
            if idem_ref is not None and (first := await idem_ref.get()).exists:
                first_id = first.get("task_id")
            return await self.get_task(first_id), False
        self._signal.notify()
        return task, True

    async def get_task(self, task_id: str) -> Task:
        snap = await self._task_ref(task_id).get()
        if not snap.exists:
            raise TaskNotFound(task_id)
        return codec.decode_task(snap.to_dict())

    async def find_idempotent(self, owner: str, idempotency_key: str) -> Task | None:
        record = await self._col.idempotency.document(codec.doc_id(owner, idempotency_key)).get()
        if not record.exists:
            return None
        return await self.get_task(record.get("task_id"))

    async def list_tasks(
        self,
        *,
        status: TaskStatus | None = None,
        owner: str | None = None,
        kind: str | None = None,
        limit: int = 50,
        cursor: str | None = None,
        newest_first: bool = False,
    ) -> Page:
        ops.check_limit(limit)
        scope = ops.listing_scope(status=status, owner=owner, kind=kind, newest_first=newest_first)
        after = ops.decode_cursor(cursor, scope) if cursor is not None else None
        query = queries.listing(self._col.tasks, status=status, owner=owner, kind=kind, after=after,
                                limit=limit + 1, newest_first=newest_first)
        tasks = [codec.decode_task(s.to_dict()) async for s in query.stream()]
        return ops.page_of(tasks, limit, scope)

    async def transition(
        self,
        task_id: str,
        target: TaskStatus,
        *,
        reason: str | None = None,
        error: tuple[str, str] | None = None,
        claimer: str | None = None,
        result: FinalResult | None = None,
        only_if: frozenset[TaskStatus] | None = None,
    ) -> Task:
        ops.check_decision(task_id, target, result)
        task, _ = await self._update_if(
            task_id,
            lambda t: ops.transitioned(t, target, reason=reason, error=error, claimer=claimer, now=utcnow(),
                                       only_if=only_if),
            result=result,
        )
        if target is TaskStatus.PENDING:
            self._signal.notify()
        return task

    async def count_by_status(self) -> dict[TaskStatus, int]:
        counts = await asyncio.gather(*(queries.count(self._col.tasks, status) for status in TaskStatus))
        return dict(zip(TaskStatus, counts, strict=True))
