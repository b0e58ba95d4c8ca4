"""The Firestore store's ``StoreMaintenance``: deadline expiry, retention's purge and blob check, ping, close.

Expiry re-checks each overdue task in its own transaction (another process may have moved it since
the query); a purge deletes each task's tree in batches, the task last, so a crash midway leaves the
task for the next pass.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from subnet_proxy.firestore_client import close_client
from subnet_proxy.store import ops
from subnet_proxy.store.base import PurgeReport, StoreMaintenance, TaskNotFound
from subnet_proxy.store.firestore import codec, queries
from subnet_proxy.store.firestore.core import FirestoreCore, fan_out
from subnet_proxy.tasks import Task, TaskStatus


class FirestoreMaintenance(FirestoreCore, StoreMaintenance):
    """Upkeep of the whole database (of this prefix)."""

    async def purge(self, *, status: TaskStatus, older_than: datetime, limit: int = 500) -> PurgeReport:
        ops.check_limit(limit)
        ops.instant(older_than)
        status = TaskStatus(status)
        query = queries.older_than(self._col.tasks, status=status, before=older_than, limit=limit)
        tasks = [codec.decode_task(s.to_dict()) async for s in query.stream()]
        reports = await fan_out(queries.delete_task_tree(self._col, self._client, t) for t in tasks)
        keys: set[str] = set().union(*reports) if reports else set()
        return PurgeReport(task_ids=[t.task_id for t in tasks], blob_keys=keys)

    async def expire_overdue(self, *, now: datetime | None = None, limit: int = 500) -> list[str]:
        ops.check_limit(limit)
        now = ops.instant(now)
        ids = await queries.overdue_ids(self._col.tasks, now=now, limit=limit)

        def expire(task: Task) -> Task | None:
            return ops.expired_by_deadline(task, now) if ops.overdue(task, now) else None

        expired = []
        for task_id in ids:
            try:
                _, changed = await self._update_if(task_id, expire)
            except TaskNotFound:
                continue  # purged meanwhile
            if changed:
                expired.append(task_id)
        return expired

    async def blobs_in_use(self, keys: Iterable[str]) -> set[str]:
        unique = sorted(set(keys))
        used = await fan_out(queries.has_refs(self._col, codec.doc_id(k)) for k in unique)
        return {key for key, in_use in zip(unique, used, strict=True) if in_use}

    async def ping(self) -> None:
        await queries.count(self._col.tasks, TaskStatus.PENDING)

    async def close(self) -> None:
        await self._signal.close()
        await close_client(self._client)
